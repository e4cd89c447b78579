import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CDPSession, Request, Response } from '@playwright/test';
import { test, expect, capture, cutShort, uniqueEmail, register, createRoom, expectConnected, send } from './support';

// One visit to a chat page as the browser and nginx saw it, for the report: the ticket request and
// its JSON answer, the WebSocket handshake's headers as Chromium sent and received them (from its
// DevTools network events: Playwright's own WebSocket events carry no headers), and nginx's access
// log of the visit. Tickets, session cookies and CSRF tokens are cut short.

const TICKET = /\/api\/rooms\/[0-9a-f]{24}\/ticket$/;

/** Header lines with secrets cut short: the ticket in the subprotocol, cookie values, CSRF tokens. */
function headerLines(headers: { name: string; value: string }[]): string[] {
  return headers.map(({ name, value }) => {
    let shown = value;
    if (/^sec-websocket-protocol$/i.test(name)) shown = value.replace(/bearer\.(\S+)/, (_, jwt) => `bearer.${cutShort(jwt)}`);
    if (/^(cookie|set-cookie)$/i.test(name)) shown = value.replace(/=([^;\s]+)/, (_, v) => `=${cutShort(v, 8)}`);
    if (/^x-csrf-token$/i.test(name)) shown = cutShort(value, 8);
    return `${name}: ${shown}`;
  });
}

function asList(headers: Record<string, string>): { name: string; value: string }[] {
  return Object.entries(headers).flatMap(([name, value]) => value.split('\n').map((v) => ({ name, value: v })));
}

async function ticketExchange(request: Request, response: Response): Promise<string> {
  const url = new URL(request.url());
  const body = (await response.json()) as { token: string; expires_in: number; ws_path: string };
  const [, payload] = body.token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  return [
    `${request.method()} ${url.pathname} HTTP/1.1`,
    ...headerLines(await request.headersArray()),
    '',
    `HTTP/1.1 ${response.status()} ${response.statusText()}`,
    ...headerLines(await response.headersArray()),
    '',
    JSON.stringify({ ...body, token: cutShort(body.token) }, null, 2),
    '',
    '# утверждения билета (его средняя часть, раскодированная из base64url):',
    JSON.stringify(claims, null, 2),
  ].join('\n');
}

interface Handshake {
  url?: string;
  request?: Record<string, string>;
  status?: number;
  statusText?: string;
  response?: Record<string, string>;
}

function recordHandshake(cdp: CDPSession): Handshake {
  const seen: Handshake = {};
  cdp.on('Network.webSocketCreated', (event) => {
    seen.url = event.url;
  });
  cdp.on('Network.webSocketWillSendHandshakeRequest', (event) => {
    seen.request = event.request.headers;
  });
  cdp.on('Network.webSocketHandshakeResponseReceived', (event) => {
    seen.status = event.response.status;
    seen.statusText = event.response.statusText;
    seen.response = event.response.headers;
    if (event.response.requestHeaders) seen.request = event.response.requestHeaders;
  });
  return seen;
}

function handshakeText(seen: Handshake): string {
  const url = new URL(seen.url!);
  return [
    `GET ${url.pathname} HTTP/1.1`,
    ...headerLines(asList(seen.request!)),
    '',
    `HTTP/1.1 ${seen.status} ${seen.statusText}`,
    ...headerLines(asList(seen.response!)),
  ].join('\n');
}

test('one chat visit as the browser and nginx saw it: ticket, WebSocket handshake, access log', async ({ page }) => {
  await register(page, uniqueEmail('grader'));
  const roomId = await createRoom(page, 'Комната для протокола');
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const handshake = recordHandshake(cdp);
  const accessLog = path.join(process.env.STACK_DIR ?? '', 'logs', 'nginx-access.log');
  const logStart = statSync(accessLog).size;

  const ticketResponse = page.waitForResponse((r) => TICKET.test(new URL(r.url()).pathname));
  await page.goto(`/rooms/${roomId}`);
  const response = await ticketResponse;
  await expectConnected(page);
  await send(page, 'Привет!');
  await expect.poll(() => handshake.status).toBe(101);

  const ticket = await ticketExchange(response.request(), response);
  expect(ticket).toContain('"expires_in": 60');
  expect(ticket).toContain('"ws_path": "/ws"');
  capture('ticket', ticket);

  const headers = handshakeText(handshake);
  expect(headers).toMatch(/^Sec-WebSocket-Protocol: chat\.v1, bearer\.eyJ/im);
  expect(headers).toMatch(/^HTTP\/1\.1 101 /m);
  expect(headers).toMatch(/^Sec-WebSocket-Protocol: chat\.v1$/im);
  capture('ws-handshake', headers);

  // nginx writes a request's line when it ends: the /ws line once the page is closed.
  await page.close();
  const visit = () => readFileSync(accessLog, 'utf8').slice(logStart).trim();
  await expect.poll(visit, { timeout: 15_000 }).toMatch(/"uri":"\/ws".*"status":101/);
  const lines = visit().split('\n');
  expect(lines.join('\n'), 'the access log never holds a ticket').not.toMatch(/eyJ/);
  capture('nginx-access', lines.join('\n'));
});
