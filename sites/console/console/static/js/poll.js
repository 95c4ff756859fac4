// Asking again until something is done, more slowly each time: 0.5 s, 1 s, 2 s, ... up to `cap`
// seconds, so a long wait costs few requests. `attempt(n)` returns a result when done (anything but
// undefined), or {wait: seconds} to ask again after that long (a server's Retry-After); `alive()`
// false (the view was left) stops it, resolving undefined.
export function pause(attempt, cap = 8) {
  return Math.min(0.5 * 2 ** attempt, cap);
}

export async function pollUntil(attempt, { alive = () => true, cap = 8 } = {}) {
  for (let n = 0; alive(); n += 1) {
    const result = await attempt(n);
    let wait = pause(n, cap);
    if (result && typeof result.wait === "number") wait = Math.min(Math.max(result.wait, 0.5), cap);
    else if (result !== undefined) return result;
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
  return undefined;
}
