from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("automate_core", "0004_budgets"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="execution",
            options={
                "ordering": ["-created_at"],
                "permissions": [("view_raw_payload", "Can view raw (unredacted) payloads")],
            },
        ),
    ]
