import { request } from '@playwright/test';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { test, expect, shot, signedInPerson, createRoom, openChat, events, onlineMembers, uniqueEmail, PASSWORD } from './support';

const CROWD = 10;

/**
 * A person signed up through the website's form (no browser), and a fresh chat ticket of theirs
 * for `roomId`, asked for the way the chat page asks (its CSRF token in X-CSRF-Token).
 */
async function newPersonWithTicket(baseURL: string, roomId: string, who: string) {
  const api = await request.newContext({ baseURL });
  try {
    const email = uniqueEmail(who);
    const signUp = await api.post('/register', { form: { email, password: PASSWORD }, maxRedirects: 0 });
    expect(signUp.status(), `sign-up of ${email}`).toBe(303);
    const chatPage = await (await api.get(`/rooms/${roomId}`)).text();
    const config = chatPage.match(/<script type="application\/json" id="chat-config">([^<]*)<\/script>/);
    expect(config, 'the chat page carries its config').not.toBeNull();
    const { csrf_token: csrfToken } = JSON.parse(config![1]);
    const ticket = await api.post(`/api/rooms/${roomId}/ticket`, {
      headers: { 'X-CSRF-Token': csrfToken, Accept: 'application/json' },
    });
    expect(ticket.status(), `ticket for ${email}`).toBe(200);
    return { email, token: (await ticket.json()).token as string };
  } finally {
    await api.dispose();
  }
}

/**
 * Opens one chat socket per ticket through nginx, all in the same moment (as a room does when the
 * chat service restarts), the way any non-browser client may: the ticket in `Authorization`. A
 * browser would open them one after another. Resolves once every server has answered 101; the
 * sockets stay open (unread) until `close` is called.
 */
async function joinAtOnce(baseURL: string, tokens: string[]) {
  const sockets = await Promise.all(
    tokens.map(
      (token) =>
        new Promise<Duplex>((resolve, reject) => {
          const upgrade = http.request(new URL('/ws', baseURL), {
            headers: {
              Connection: 'Upgrade',
              Upgrade: 'websocket',
              'Sec-WebSocket-Version': '13',
              'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
              Authorization: `Bearer ${token}`,
            },
          });
          upgrade.on('upgrade', (_response, socket) => resolve(socket));
          upgrade.on('response', (response) => reject(new Error(`handshake answered ${response.statusCode}`)));
          upgrade.on('error', reject);
          upgrade.end();
        }),
    ),
  );
  return { close: () => sockets.forEach((socket) => socket.destroy()) };
}

test('ten people joining at once are one line on the chat page, not ten', async ({ browser, baseURL }) => {
  const alice = await signedInPerson(browser, 'alice', 'crowd-alice');
  const roomId = await createRoom(alice.page, 'Crowd room');
  const crowd = [];
  for (let i = 0; i < CROWD; i++) crowd.push(await newPersonWithTicket(baseURL!, roomId, `crowd${i}`));
  await openChat(alice.page, roomId);
  await expect(events(alice.page, 'joined')).toHaveCount(1); // her own arrival

  const sockets = await joinAtOnce(
    baseURL!,
    crowd.map((person) => person.token),
  );

  // The chat service announces the first few on their own and summarizes the rest; the page
  // shows the whole burst as one line, e.g. "crowd0…, crowd1… и ещё 8 входят в комнату".
  const line = events(alice.page, 'presence');
  await expect(line).toHaveCount(1);
  await expect(line).toContainText(/(ещё|and) 8/);
  await expect(events(alice.page, 'joined')).toHaveCount(1);
  await expect(events(alice.page)).toHaveCount(3); // welcome, her arrival, the crowd
  // Ten names fit in the summaries, so the online list is exact: everyone, each once.
  await expect.poll(async () => (await onlineMembers(alice.page).allTextContents()).map((t) => t.trim()).sort()).toEqual(
    [alice.email, ...crowd.map((person) => person.email)].sort(),
  );
  await shot(alice.page, '17-chat-crowd-one-line');

  sockets.close();
  await alice.context.close();
});
