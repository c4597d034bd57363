"""Analytic queries over the shop dataset that the guard must accept and whose results must
equal the same SQL run directly on tenant A's rows (the ``datachat_reference`` views).

Each query is deterministic: any LIMIT follows an ORDER BY over unique keys.
"""

from __future__ import annotations

BENIGN: list[str] = [
    # plain selects and filters
    "SELECT * FROM orders",
    "SELECT id, name, country FROM customers WHERE country = 'de'",
    "SELECT id, total FROM orders WHERE total > 250 AND status = 'paid'",
    "SELECT id FROM orders WHERE status IN ('paid', 'refunded') AND quantity BETWEEN 2 AND 5",
    "SELECT name FROM customers WHERE segment IS NULL",
    "SELECT name FROM customers WHERE name LIKE 'customer 1%'",
    "SELECT email FROM customers WHERE email ILIKE 'C2%'",
    "SELECT id FROM orders WHERE NOT (status = 'paid' OR status = 'pending')",
    "SELECT id, total FROM orders ORDER BY total DESC, id LIMIT 10",
    "SELECT id, total FROM orders ORDER BY id LIMIT 5 OFFSET 10",
    "SELECT DISTINCT country FROM customers",
    "SELECT DISTINCT status, channel FROM orders",
    "SELECT c.* FROM customers AS c WHERE c.id < 5",
    "SELECT o.id, o.total * o.quantity AS gross FROM orders o WHERE o.quantity > 7",
    "SELECT id, round(total / quantity, 2) AS unit_price FROM orders",
    "SELECT id, abs(total - 100), ceil(total), floor(total), mod(quantity, 3) FROM orders",
    "SELECT id, COALESCE(segment, 'none') AS segment FROM customers",
    "SELECT id, NULLIF(status, 'paid') FROM orders",
    "SELECT id, greatest(total, 100), least(total, 100) FROM orders",
    "SELECT id, upper(name), lower(email), length(name) FROM customers",
    "SELECT id, substring(email FROM 1 FOR 3), position('@' IN email) FROM customers",
    "SELECT id, split_part(email, '@', 2), left(name, 3), right(name, 2) FROM customers",
    "SELECT id, name || ' <' || email || '>' AS contact FROM customers",
    "SELECT id, concat(country, '-', segment), trim(both ' ' FROM name) FROM customers",
    "SELECT id, replace(email, '@example.com', '') FROM customers",
    # aggregates and grouping
    "SELECT count(*) FROM orders",
    "SELECT status, count(*), sum(total), avg(total), min(total), max(total) "
    "FROM orders GROUP BY status",
    "SELECT country, count(*) AS n FROM customers GROUP BY country HAVING count(*) > 5",
    "SELECT channel, round(avg(quantity), 3) FROM orders GROUP BY 1 ORDER BY 1",
    "SELECT status, count(*) FILTER (WHERE total > 200) AS big FROM orders GROUP BY status",
    "SELECT count(DISTINCT customer_id) FROM orders",
    "SELECT status, string_agg(id::text, ',' ORDER BY id) FROM orders WHERE id < 40 "
    "GROUP BY status",
    "SELECT country, array_agg(id ORDER BY id) FROM customers GROUP BY country",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders",
    "SELECT status, percentile_disc(0.9) WITHIN GROUP (ORDER BY total) FROM orders GROUP BY status",
    "SELECT round(stddev_samp(total), 6), round(variance(total), 6) FROM orders",
    "SELECT bool_and(total > 0), bool_or(total > 400) FROM orders",
    "SELECT country, segment, count(*) FROM customers "
    "GROUP BY GROUPING SETS ((country), (segment), ())",
    "SELECT status, channel, sum(total) FROM orders GROUP BY ROLLUP (status, channel)",
    "SELECT status, channel, count(*) FROM orders GROUP BY CUBE (status, channel)",
    # dates
    "SELECT date_trunc('month', placed_at) AS month, sum(total) FROM orders GROUP BY 1 ORDER BY 1",
    "SELECT date_trunc('week', placed_at) AS week, count(*) FROM orders GROUP BY 1",
    "SELECT extract(year FROM placed_at) AS y, extract(quarter FROM placed_at) AS q, count(*) "
    "FROM orders GROUP BY 1, 2",
    "SELECT id FROM orders WHERE placed_at >= '2024-06-01' AND placed_at < '2024-07-01'",
    "SELECT id, placed_at::date AS day FROM orders WHERE placed_at::date = '2024-03-15'",
    "SELECT id, placed_at + interval '30 days' AS due FROM orders",
    "SELECT id, to_char(placed_at, 'YYYY-MM') FROM orders",
    "SELECT o.id, age(placed_at, signed_up_at) FROM orders o JOIN customers c "
    "ON c.id = o.customer_id",
    "SELECT count(*) FROM orders WHERE placed_at > now() - interval '10 years'",
    "SELECT extract(dow FROM placed_at) AS dow, count(*) FROM orders GROUP BY 1",
    # CASE
    "SELECT id, CASE WHEN total > 300 THEN 'large' WHEN total > 100 THEN 'medium' "
    "ELSE 'small' END AS size FROM orders",
    "SELECT CASE status WHEN 'paid' THEN 1 ELSE 0 END AS paid, count(*) FROM orders GROUP BY 1",
    "SELECT sum(CASE WHEN channel = 'web' THEN total ELSE 0 END) AS web_revenue FROM orders",
    # joins
    "SELECT c.name, o.id, o.total FROM customers c JOIN orders o ON o.customer_id = c.id",
    "SELECT c.country, sum(o.total) FROM customers c INNER JOIN orders o "
    "ON o.customer_id = c.id GROUP BY c.country",
    "SELECT c.id, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id "
    "GROUP BY c.id",
    "SELECT c.id FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.id IS NULL",
    "SELECT count(*) FROM customers c CROSS JOIN (SELECT DISTINCT status FROM orders) s",
    "SELECT o1.id, o2.id FROM orders o1 JOIN orders o2 ON o1.customer_id = o2.customer_id "
    "AND o1.id < o2.id WHERE o1.total > 400",
    "SELECT c.name, o.total FROM customers c FULL JOIN orders o ON o.customer_id = c.id "
    "WHERE o.total > 450",
    "SELECT customers.name FROM customers JOIN orders USING (id)",
    # subqueries
    "SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE total > 450)",
    "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o "
    "WHERE o.customer_id = c.id AND o.status = 'refunded')",
    "SELECT name FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o "
    "WHERE o.customer_id = c.id)",
    "SELECT id, total, (SELECT avg(total) FROM orders) AS average FROM orders",
    "SELECT id FROM orders WHERE total > (SELECT avg(total) FROM orders)",
    "SELECT s.status, s.n FROM (SELECT status, count(*) AS n FROM orders GROUP BY status) s "
    "WHERE s.n > 10",
    "SELECT c.name, x.total FROM customers c, LATERAL (SELECT o.total FROM orders o "
    "WHERE o.customer_id = c.id ORDER BY o.total DESC, o.id LIMIT 1) x",
    "SELECT id FROM orders WHERE total > ALL (SELECT total FROM orders WHERE status = 'failed')",
    "SELECT id FROM orders WHERE customer_id = ANY (ARRAY[1, 2, 3])",
    # CTEs
    "WITH paid AS (SELECT * FROM orders WHERE status = 'paid') "
    "SELECT customer_id, sum(total) FROM paid GROUP BY customer_id",
    "WITH per_customer AS (SELECT customer_id, count(*) AS n FROM orders GROUP BY 1), "
    "ranked AS (SELECT customer_id, n, rank() OVER (ORDER BY n DESC) AS r FROM per_customer) "
    "SELECT c.name, ranked.n FROM ranked JOIN customers c ON c.id = ranked.customer_id "
    "WHERE r <= 3",
    "WITH orders AS (SELECT * FROM orders WHERE total > 400) SELECT count(*) FROM orders",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12) "
    "SELECT n.i, count(o.id) FROM n LEFT JOIN orders o "
    "ON extract(month FROM o.placed_at) = n.i GROUP BY n.i",
    "WITH m AS (SELECT date_trunc('month', placed_at) AS month, sum(total) AS revenue "
    "FROM orders GROUP BY 1) SELECT month, revenue, revenue - lag(revenue) OVER "
    "(ORDER BY month) AS change FROM m",
    # window functions
    "SELECT id, total, row_number() OVER (PARTITION BY customer_id ORDER BY placed_at, id) "
    "FROM orders",
    "SELECT id, rank() OVER (ORDER BY total DESC), dense_rank() OVER (ORDER BY quantity) "
    "FROM orders",
    "SELECT id, sum(total) OVER (PARTITION BY customer_id ORDER BY placed_at, id) AS running "
    "FROM orders",
    "SELECT id, avg(total) OVER (ORDER BY placed_at, id ROWS BETWEEN 2 PRECEDING AND "
    "CURRENT ROW) FROM orders",
    "SELECT id, lead(total) OVER w, lag(total, 2) OVER w FROM orders WINDOW w AS (ORDER BY id)",
    "SELECT id, first_value(total) OVER (PARTITION BY status ORDER BY id), "
    "ntile(4) OVER (ORDER BY total, id) FROM orders",
    "SELECT id, percent_rank() OVER (ORDER BY total, id), cume_dist() OVER (ORDER BY total, id) "
    "FROM orders",
    # DISTINCT ON and set operations
    "SELECT DISTINCT ON (customer_id) customer_id, id, total FROM orders "
    "ORDER BY customer_id, placed_at DESC, id",
    "SELECT DISTINCT ON (country) country, name FROM customers ORDER BY country, id",
    "SELECT customer_id FROM orders WHERE status = 'paid' UNION "
    "SELECT customer_id FROM orders WHERE status = 'refunded'",
    "SELECT id FROM customers INTERSECT SELECT customer_id FROM orders",
    "SELECT id FROM customers EXCEPT SELECT customer_id FROM orders",
    "SELECT 'customer' AS kind, count(*) FROM customers UNION ALL "
    "SELECT 'order', count(*) FROM orders",
    # table functions
    "SELECT g.d::date AS day, count(o.id) FROM generate_series('2024-01-01'::timestamptz, "
    "'2024-01-10'::timestamptz, interval '1 day') AS g(d) LEFT JOIN orders o "
    "ON date_trunc('day', o.placed_at) = g.d GROUP BY 1",
    "SELECT u.s, count(o.id) FROM unnest(ARRAY['paid', 'failed']) AS u(s) "
    "JOIN orders o ON o.status = u.s GROUP BY u.s",
]
