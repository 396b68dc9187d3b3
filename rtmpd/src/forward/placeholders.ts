/** `{app}` and `{key}` in a destination URL become the stream's app and key, so one rule maps many streams. */
export const fillPlaceholders = (url: string, app: string, key: string): string => url.replaceAll('{app}', app).replaceAll('{key}', key);
