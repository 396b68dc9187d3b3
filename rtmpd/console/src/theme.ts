// Dark, light, or whatever the system prefers (the default); remembered per browser.
const THEMES = ['auto', 'dark', 'light'] as const;
type Theme = (typeof THEMES)[number];
const KEY = 'rtmpd.theme';

export function initTheme(button: HTMLButtonElement): void {
  const stored = localStorage.getItem(KEY);
  let theme: Theme = THEMES.includes(stored as Theme) ? (stored as Theme) : 'auto';
  const apply = () => {
    if (theme === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    button.textContent = `Theme: ${theme}`;
    button.setAttribute('aria-label', `Colour theme: ${theme}; press to change`);
  };
  button.addEventListener('click', () => {
    theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length]!;
    localStorage.setItem(KEY, theme);
    apply();
  });
  apply();
}
