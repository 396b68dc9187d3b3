// Asks for an API token when rtmpd answers 401/403 (API authorization on).
import { h } from './dom.ts';

let asking: Promise<string> | undefined;

/** One dialog at a time however many requests were refused; resolves with the token typed. */
export function askForToken(reason: string): Promise<string> {
  asking ??= new Promise<string>((resolve) => {
    const input = h('input', { type: 'password', name: 'token', required: true, autocomplete: 'off', 'aria-label': 'API token' });
    const dialog = h(
      'dialog',
      { class: 'token-dialog', 'aria-labelledby': 'token-title' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'token-title' }, 'API token needed'),
        h('p', {}, reason),
        input,
        h('div', { class: 'dialog-actions' }, h('button', { type: 'submit' }, 'Use token')),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      asking = undefined;
      resolve(input.value.trim());
    });
    document.body.append(dialog);
    dialog.showModal();
  });
  return asking;
}
