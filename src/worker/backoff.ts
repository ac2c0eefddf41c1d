/** Exponential backoff with full jitter, capped: 2 s, 4 s, 8 s … up to `capMs`. */
export function backoffMs(attempt: number, baseMs = 2_000, capMs = 120_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
}
