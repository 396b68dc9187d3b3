// The Node.js rtmpd and its operator are built for (package.json engines and
// the `node` devDependency). Started on an older one, the programs say so
// instead of failing with a syntax or module error inside a dependency. The
// bin scripts run this before anything else, so it imports nothing.
export const minimumNodeMajor = 24;

/** The message refusing to run on this Node.js, or undefined when it is recent enough. */
export function unsupportedNode(program: string, version: string = process.versions.node): string | undefined {
  if (Number(version.split('.')[0]) >= minimumNodeMajor) return undefined;
  return (
    `${program} needs Node.js ${minimumNodeMajor} or newer; this is Node.js ${version}.\n` +
    `Install Node.js ${minimumNodeMajor}, or in a checkout of flux-rtmpd run it through npm (npx ${program}), whose node_modules/.bin carries Node.js ${minimumNodeMajor}.`
  );
}

/** Exits with that message when this Node.js is too old. */
export function requireNode(program: string): void {
  const refusal = unsupportedNode(program);
  if (!refusal) return;
  process.stderr.write(`${refusal}\n`);
  process.exit(1);
}
