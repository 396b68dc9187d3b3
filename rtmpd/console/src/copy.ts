// A URL a person copies: its label, the URL in a read-only field (selectable
// by hand too) and a Copy button.
import { h } from './dom.ts';
import type { CopyableUrl } from './urls.ts';

export function copyRow(url: CopyableUrl): HTMLElement[] {
  const field = h('input', { type: 'text', readonly: true, value: url.value, id: `url-${url.id}`, spellcheck: 'false' });
  const button = h('button', { type: 'button', class: 'copy', 'data-copy': url.value, 'aria-label': `Copy ${url.label}` }, 'Copy');
  button.addEventListener('click', () => void copy(field, button));
  return [
    h('dt', {}, h('label', { for: field.id }, url.label), url.hint ? h('span', { class: 'hint' }, url.hint) : null),
    h('dd', {}, field, button),
  ];
}

async function copy(field: HTMLInputElement, button: HTMLButtonElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    // No Clipboard API outside a secure context (plain http on a non-local host): the selection still works.
    field.select();
    document.execCommand('copy');
  }
  button.textContent = 'Copied';
  window.setTimeout(() => (button.textContent = 'Copy'), 1500);
}
