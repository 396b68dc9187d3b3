/** How much of an ffmpeg's stderr is kept: its last lines say why it failed, and it may write without end. */
const STDERR_TAIL_BYTES = 4096;

/** The last bytes of a stream of text, kept in a bounded buffer. */
export class StderrTail {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes - this.chunks[0]!.length >= STDERR_TAIL_BYTES) this.bytes -= this.chunks.shift()!.length;
  }

  /** The last `chars` characters, whole lines, joined by ' | '. */
  text(chars: number): string {
    const text = Buffer.concat(this.chunks).toString('utf8').slice(-chars);
    const lines = text.split('\n').map((line) => line.trim());
    if (text.length === chars) lines.shift(); // cut mid-line
    return lines.filter(Boolean).join(' | ');
  }
}
