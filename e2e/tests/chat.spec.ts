import {
  test,
  expect,
  shot,
 
  signedInPerson,
  createRoom,
  openChat,
  expectConnected,
  send,
  events,
  messageLines,
  onlineMembers,
  restartChatService,
} from './support';

test.describe('two people in one room', () => {
  test('arrival, messages, markup and departure appear on both pages; another room sees none of it', async ({ browser }) => {
    const alice = await signedInPerson(browser, 'alice', 'chat-alice');
    const bob = await signedInPerson(browser, 'bob', 'chat-bob');
    const carol = await signedInPerson(browser, 'carol', 'chat-carol');
    const roomId = await createRoom(alice.page, 'Общий чат');
    const otherRoomId = await createRoom(carol.page, 'Other room');

    // Scenario 4: the second arrival is announced on both pages and both online lists update.
    await openChat(alice.page, roomId);
    await openChat(carol.page, otherRoomId);
    await expect(onlineMembers(alice.page)).toHaveText([alice.email]);
    await openChat(bob.page, roomId);
    for (const page of [alice.page, bob.page]) {
      await expect(events(page, 'joined').filter({ hasText: bob.email })).toHaveCount(1);
      await expect.poll(async () => (await onlineMembers(page).allTextContents()).map((t) => t.trim()).sort()).toEqual([alice.email, bob.email].sort());
    }
    await shot(alice.page, '11-chat-joined-notice');

    // Scenario 5: messages from either side appear at once on both pages, in order, with the author.
    await send(alice.page, 'Привет, Боб!');
    await send(bob.page, 'Hi Alice');
    await send(alice.page, 'How are you?');
    const expected = [`${alice.email}: Привет, Боб!`, `${bob.email}: Hi Alice`, `${alice.email}: How are you?`];
    for (const page of [alice.page, bob.page]) {
      await expect.poll(() => messageLines(page)).toEqual(expected);
    }
    await shot(alice.page, '12-chat-two-users-alice');
    await shot(bob.page, '13-chat-two-users-bob');

    // Scenario 6: markup in a message is shown as text and runs nothing.
    let dialogs = 0;
    for (const page of [alice.page, bob.page]) page.on('dialog', () => dialogs++);
    const attack = '<img src=x onerror=alert(1)>';
    await send(bob.page, attack);
    for (const page of [alice.page, bob.page]) {
      await expect(events(page, 'message').last().getByTestId('event-text')).toHaveText(attack);
      await expect(page.getByTestId('messages').locator('img')).toHaveCount(0);
    }
    await shot(alice.page, '14-chat-markup-as-text');

    // Scenario 7: when Bob closes his page, Alice sees him leave.
    await bob.page.close();
    await expect(events(alice.page, 'left').filter({ hasText: bob.email })).toHaveCount(1);
    await expect(onlineMembers(alice.page)).toHaveText([alice.email]);
    await shot(alice.page, '15-chat-left-notice');

    // The third person, in another room, saw none of it.
    await expect(events(carol.page, 'message')).toHaveCount(0);
    await expect(events(carol.page).filter({ hasText: bob.email })).toHaveCount(0);
    await expect(onlineMembers(carol.page)).toHaveText([carol.email]);
    expect(dialogs, 'no script ran from a message').toBe(0);

    for (const person of [alice, bob, carol]) await person.context.close();
  });
});

test('the chat page reconnects by itself after the chat service restarts', async ({ browser }) => {
  const alice = await signedInPerson(browser, 'alice', 'restart-alice');
  const bob = await signedInPerson(browser, 'bob', 'restart-bob');
  const roomId = await createRoom(alice.page, 'Restart room');
  await openChat(alice.page, roomId);
  await openChat(bob.page, roomId);
  await send(alice.page, 'before the restart');
  await expect.poll(() => messageLines(bob.page)).toEqual([`${alice.email}: before the restart`]);
  // Alice was typing (her field has the focus after sending); Bob was reading.
  await bob.page.getByTestId('message-input').blur();

  restartChatService();

  // The restart is visible, then heals by itself with a fresh ticket.
  for (const page of [alice.page, bob.page]) {
    await expect(events(page, 'gap')).toHaveCount(1, { timeout: 30_000 });
    await expectConnected(page);
  }
  // The field is given back to the one who was typing only: a reader's phone does not open its
  // keyboard by itself.
  await expect(alice.page.getByTestId('message-input')).toBeFocused();
  await expect(bob.page.getByTestId('message-input')).not.toBeFocused();
  await shot(alice.page, '16-chat-reconnected');

  await send(bob.page, 'after the restart');
  for (const page of [alice.page, bob.page]) {
    await expect(events(page, 'message').last().getByTestId('event-text')).toHaveText('after the restart');
  }
  for (const person of [alice, bob]) await person.context.close();
});

test('the chat page shows a disconnected state while the chat service is down', async ({ browser }) => {
  // Observed through the connection state element as the page loses its socket.
  const alice = await signedInPerson(browser, 'alice', 'down-alice');
  const roomId = await createRoom(alice.page, 'Down room');
  await openChat(alice.page, roomId);
  const states: string[] = [];
  await alice.page.exposeFunction('recordState', (s: string) => states.push(s));
  await alice.page.evaluate(() => {
    const el = document.querySelector('[data-testid="connection-state"]')!;
    new MutationObserver(() => (window as any).recordState(el.getAttribute('data-state'))).observe(el, {
      attributes: true,
      attributeFilter: ['data-state'],
    });
  });

  restartChatService();

  await expectConnected(alice.page);
  await expect.poll(() => states.some((s) => s === 'reconnecting' || s === 'closed')).toBe(true);
  await alice.context.close();
});

test('a page the chat closed for abuse (1008) stops reconnecting and says why', async ({ browser }) => {
  const alice = await signedInPerson(browser, 'alice', 'chat-abuse');
  const roomId = await createRoom(alice.page, 'Flood');
  await openChat(alice.page, roomId);

  // Forty messages in one go, through the page's own input: far past CHAT_MESSAGES_BURST, so
  // every one after the burst is refused, and CHAT_MAX_STRIKES refusals in a row close the
  // socket with 1008.
  await alice.page.getByTestId('message-input').evaluate((input: HTMLInputElement) => {
    for (let i = 0; i < 40; i++) {
      input.value = `flood ${i}`;
      input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
    }
  });

  const state = alice.page.getByTestId('connection-state');
  await expect(state).toHaveAttribute('data-state', 'closed');
  await expect(events(alice.page, 'error').last()).toBeVisible();
  // No reconnect: the state stays closed well past the first retry delay (0.5–1 s).
  await alice.page.waitForTimeout(3000);
  await expect(state).toHaveAttribute('data-state', 'closed');
  await shot(alice.page, '19-chat-closed-for-abuse');
});
