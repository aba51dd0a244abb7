/** Whether this run is CI: `CI` set to anything but '', '0' or 'false' (CI machines set CI=true; `.ci/run` sets CI=1). */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}
