// A user is in a flag's rollout when the first byte of SHA-256(flag:user), as a percentage, is
// below it: stable for a user, independent between flags, no state.
export async function inRollout(flag, user, rollout) {
  if (rollout >= 100) return true;
  if (rollout <= 0) return false;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${flag}:${user}`));
  const bucket = (new Uint8Array(digest)[0] / 256) * 100;
  return bucket < rollout;
}
