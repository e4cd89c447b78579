import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from '@playwright/test';
import {
  test,
  expect,
  shot,
  signedInPerson,
  createRoom,
  openChat,
  send,
  events,
  messageLines,
  restartChatService,
  chatPid,
  ownStack,
  root,
} from './support';

/** The contract: members learn of a deletion within 2 s. */
const TOLD_WITHIN = 2_000;

/** Deletes the room from the owner's home page, answering the confirmation. */
async function deleteFromHome(owner: Page, title: string): Promise<void> {
  await owner.goto('/');
  owner.once('dialog', (dialog) => dialog.accept());
  await owner.getByTestId('room-item').filter({ hasText: title }).getByTestId('delete-room').click();
  await expect(owner.getByTestId('room-item').filter({ hasText: title })).toHaveCount(0);
}

const TICKET = /\/api\/rooms\/[0-9a-f]{24}\/ticket$/;

/** Counts the page's ticket requests from now on: a page that reconnects asks for one first. */
function countTicketRequests(page: Page): () => number {
  let count = 0;
  page.on('request', (request) => {
    if (TICKET.test(new URL(request.url()).pathname)) count += 1;
  });
  return () => count;
}

async function expectDeletedState(page: Page, timeout: number): Promise<void> {
  await expect(page.getByTestId('connection-state')).toHaveAttribute('data-state', 'closed', { timeout });
  await expect(events(page).last()).toContainText('Эта комната удалена.');
  await expect(page.getByTestId('message-input')).toBeDisabled();
  await expect(page.getByTestId('send')).toBeDisabled();
}

/** Owner, a guest and a second guest; both guests in the chat of the owner's new room. */
async function roomWithTwoGuests(browser: Browser, label: string, title: string) {
  const owner = await signedInPerson(browser, 'owner', `${label}-owner`);
  const guest = await signedInPerson(browser, 'guest', `${label}-guest`);
  const other = await signedInPerson(browser, 'other', `${label}-other`);
  const roomId = await createRoom(owner.page, title);
  await openChat(guest.page, roomId);
  await openChat(other.page, roomId);
  return { owner, guest, other, roomId, close: () => Promise.all([owner, guest, other].map((p) => p.context.close())) };
}

/** Both guests see the deletion at once, stop for good, and nothing said afterwards is shown. */
async function deletionReachesBothGuests(people: Awaited<ReturnType<typeof roomWithTwoGuests>>, title: string) {
  const { owner, guest, other } = people;
  await send(guest.page, 'до удаления');
  await expect.poll(() => messageLines(other.page)).toContain(`${guest.email}: до удаления`);
  const guestTickets = countTicketRequests(guest.page);

  await deleteFromHome(owner.page, title);

  for (const person of [guest, other]) await expectDeletedState(person.page, TOLD_WITHIN);
  // The input is disabled; a message pushed through the form anyway goes nowhere.
  await guest.page.evaluate(() => {
    const input = document.querySelector<HTMLTextAreaElement | HTMLInputElement>('[data-testid="message-input"]')!;
    input.value = 'после удаления';
    document.querySelector<HTMLFormElement>('#composer')!.requestSubmit();
  });
  // Well past the page's first reconnect delay (0.5–1 s): no ticket asked for, no new message.
  await guest.page.waitForTimeout(3_000);
  expect(guestTickets(), 'a deleted room is never reconnected to').toBe(0);
  expect(await messageLines(other.page)).not.toContain(`${guest.email}: после удаления`);
  await expect(guest.page.getByTestId('connection-state')).toHaveAttribute('data-state', 'closed');
}

test('a guest in a room its owner deletes sees it within 2 s, cannot send, and the page never reconnects', async ({ browser }) => {
  const title = 'Комната, которую удалят';
  const people = await roomWithTwoGuests(browser, 'deleted', title);
  await deletionReachesBothGuests(people, title);
  await shot(people.guest.page, '24-chat-room-deleted');
  await people.close();
});

test('with the chat down, deleting a room still succeeds at once, and the guest learns it once the chat is back', async ({ browser }) => {
  const owner = await signedInPerson(browser, 'owner', 'deleted-down-owner');
  const guest = await signedInPerson(browser, 'guest', 'deleted-down-guest');
  const title = 'Удалена при остановленном чате';
  const roomId = await createRoom(owner.page, title);
  await openChat(guest.page, roomId);

  process.kill(chatPid(), 'SIGKILL'); // a crash: nothing is told to anyone
  try {
    await expect(guest.page.getByTestId('connection-state')).not.toHaveAttribute('data-state', 'open');
    const started = Date.now();
    await deleteFromHome(owner.page, title);
    // The website waits at most CHAT_NOTICE_TIMEOUT_MS (1 s) for the chat; a refused connection
    // costs nothing. Generous for a loaded machine, far below a hang (the request timeout is 8 s).
    expect(Date.now() - started).toBeLessThan(5_000);
  } finally {
    restartChatService();
  }
  // The page learns it at its next reconnect: its ticket request answers 404, or, if it still holds
  // a ticket from before the deletion, its room check once that ticket has opened a socket does.
  await expectDeletedState(guest.page, 30_000);
  for (const person of [owner, guest]) await person.context.close();
});

test('a page still holding a ticket from before a deletion the chat missed learns it once the chat is back', async ({ browser }) => {
  const owner = await signedInPerson(browser, 'owner', 'deleted-held-owner');
  const guest = await signedInPerson(browser, 'guest', 'deleted-held-guest');
  const title = 'Удалена, пока билет был на руках';
  const roomId = await createRoom(owner.page, title);
  await openChat(guest.page, roomId);
  const ticketGiven = guest.page.waitForResponse((r) => TICKET.test(new URL(r.url()).pathname) && r.status() === 200);
  const roomChecked = guest.page.waitForResponse((r) => r.request().method() === 'HEAD' && new URL(r.url()).pathname === `/rooms/${roomId}`);

  process.kill(chatPid(), 'SIGKILL');
  try {
    // The page's first retry asks for a ticket, which it keeps trying while the chat is down;
    // only then is the room deleted, and the chat, being down, never hears of it.
    await ticketGiven;
    await deleteFromHome(owner.page, title);
  } finally {
    restartChatService();
  }
  // The restarted chat lets that ticket in (nothing tells it the room is gone); the page then
  // asks whether its room is still there, hears 404, and ends in the deleted state.
  expect((await roomChecked).status()).toBe(404);
  await expectDeletedState(guest.page, 10_000);
  for (const person of [owner, guest]) await person.context.close();
});

test.describe('with two chat replicas', () => {
  // A stack of its own (two chat replicas and a Redis), beside the one the other scenarios use.
  const stackDir = path.join(root, 'target', 'e2e-replicas-stack');
  const env = { ...process.env, STACK_DIR: stackDir, CHAT_REPLICAS: '2', STACK_BUILD: '0' };
  const baseURL = ownStack(env);

  test('guests on different replicas both see the deletion within 2 s', async ({ browser }) => {
    const onReplicas: Browser = new Proxy(browser, {
      get(target, prop, receiver) {
        if (prop === 'newContext') {
          return (options = {}) => target.newContext({ baseURL: baseURL(), ...options });
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    const title = 'Комната на двух репликах';
    const people = await roomWithTwoGuests(onReplicas, 'deleted-replicas', title);
    // nginx sends each new socket to the replica with the fewest open: one guest on each.
    const logs = ['chat-1', 'chat-2'].map((name) => readFileSync(path.join(stackDir, 'logs', `${name}.log`), 'utf8'));
    // Each replica logs the people it seats (emails are unique to this test).
    const replicaOf = (email: string) => logs.findIndex((log) => log.includes(email));
    expect(new Set([replicaOf(people.guest.email), replicaOf(people.other.email)])).toEqual(new Set([0, 1]));

    await deletionReachesBothGuests(people, title);
    await people.close();
  });
});
