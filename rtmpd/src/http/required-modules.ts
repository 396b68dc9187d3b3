// node:http and @koa/router loaded with require rather than import. An ES
// import of a built-in module builds its namespace by reading every export,
// and node:http's WebSocket, CloseEvent and MessageEvent getters then load
// undici (with http2, tls, zlib, crypto and assert: 7 MiB more RSS in an idle
// rtmpd), which rtmpd never uses; required, they stay unread. @koa/router's ES
// build imports node:http, its CommonJS build requires it. Everything in
// rtmpd takes node:http's values and @koa/router from here, so there is one
// Router class.
import type * as KoaRouter from '@koa/router';
import type * as Http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const { createServer, request, METHODS } = require('node:http') as typeof Http;
export const Router: typeof KoaRouter.Router = (require('@koa/router') as typeof KoaRouter).Router;
export type Router = KoaRouter.Router;
