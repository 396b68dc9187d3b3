// The browser tests load the bundle rtmpd serves from rtmpd/dist/console: build it from the current sources first.
import { buildConsole } from '../build.ts';

export default async function setup(): Promise<void> {
  await buildConsole();
}
