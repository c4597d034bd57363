// The panel's texts; an embed's theme.strings replaces any of them.
export const STRINGS = {
  open: "Open chat",
  close: "Close chat",
  send: "Send",
  stop: "Stop",
  retry: "Try again",
  placeholder: "Ask a question…",
  not_available: "This chat is not available on this site.",
  quota: "You have reached today's limit for this chat. Please come back tomorrow.",
  rate_limited: "Too many messages. Please wait a moment and try again.",
  network: "The connection was lost. Check your network and try again.",
  error: "Something went wrong. Please try again.",
  identity: "Please sign in to chat.",
  sources: "Sources",
  table: "Result table",
  chart: "Chart of the result",
  thumbs_up: "Helpful",
  thumbs_down: "Not helpful",
  stopped: "Stopped.",
};

/** The message to show for a NormalizedError code. */
export function messageFor(code, strings) {
  switch (code) {
    case "origin_not_allowed":
    case "embed_not_found":
      return strings.not_available;
    case "budget_exceeded":
      return strings.quota;
    case "throttled":
    case "daily_cap_reached":
      return strings.rate_limited;
    case "identity_required":
    case "invalid_token":
    case "token_expired":
    case "token_replayed":
      return strings.identity;
    case "network":
      return strings.network;
    default:
      return strings.error;
  }
}
