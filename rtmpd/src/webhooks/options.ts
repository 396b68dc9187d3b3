// The webhook options' value types (config.ts declares the options): lists
// that a flag or variable gives as one string separated by commas, and a
// config file as a list.
import { z } from 'zod';
import { commaList } from '../options.ts';

export const webhookEventTypes = ['stream.started', 'stream.ended', 'recording.completed'] as const;
export type WebhookEventType = (typeof webhookEventTypes)[number];

export const webhookUrls = commaList(z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).max(2048), 16);

export const webhookEventList = commaList(z.enum(webhookEventTypes), webhookEventTypes.length);
