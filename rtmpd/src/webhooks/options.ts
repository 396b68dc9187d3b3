// The webhook options' value types (config.ts declares the options): lists
// that a flag or variable gives as one string separated by commas, and a
// config file as a list.
import { z } from 'zod';

export const webhookEventTypes = ['stream.started', 'stream.ended', 'recording.completed'] as const;
export type WebhookEventType = (typeof webhookEventTypes)[number];

/** A list, or one string of items separated by commas (and spaces). */
const commaList = <Item extends z.ZodType>(item: Item, max: number) =>
  z.preprocess(
    (value) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((v) => v.trim())
            .filter((v) => v !== '')
        : value,
    z.array(item).max(max),
  );

export const webhookUrls = commaList(z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).max(2048), 16);

export const webhookEventList = commaList(z.enum(webhookEventTypes), webhookEventTypes.length);
