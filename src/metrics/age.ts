/** How long ago `since` was, in words: `45 s`, `12 min`, `3 h 10 min`, `2 d 4 h`. */
export function formatAge(now: Date, since: string): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(since)) / 1000))
  if (seconds < 60) return `${seconds} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours} h ${minutes % 60} min`
  return `${Math.floor(hours / 24)} d ${hours % 24} h`
}
