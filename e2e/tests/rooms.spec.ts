import { test, expect, shot, uniqueEmail, register, createRoom, signedInPerson } from './support';

test('a user creates three rooms, sees them newest first, deletes one and it stays gone', async ({ page }) => {
  await register(page, uniqueEmail('owner'));
  const titles = ['Планирование спринта', 'Weekly standup', 'Random talk'];
  for (const title of titles) {
    await createRoom(page, title);
  }

  const links = page.getByTestId('my-rooms').getByTestId('room-link');
  await expect(links).toHaveText([...titles].reverse());
  await shot(page, '07-my-rooms');

  // The page asks first, naming the room. Dismissing the question keeps the room.
  const deleteButton = page.getByTestId('room-item').filter({ hasText: titles[1] }).getByTestId('delete-room');
  const questions: string[] = [];
  page.once('dialog', async (dialog) => {
    questions.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss();
  });
  await deleteButton.click();
  await expect.poll(() => questions).toEqual([`confirm: Удалить комнату «${titles[1]}»? Это действие нельзя отменить.`]);
  await page.reload();
  await expect(links).toHaveText([...titles].reverse());

  // Accepting it deletes the room.
  page.once('dialog', (dialog) => dialog.accept());
  await deleteButton.click();
  await expect(links).toHaveText([titles[2], titles[0]]);

  await page.reload();
  await expect(links).toHaveText([titles[2], titles[0]]);
  await shot(page, '08-my-rooms-after-delete');
});

test('a room title is shown as text, never as markup', async ({ page }) => {
  await register(page, uniqueEmail('markup'));
  const title = '<b>bold</b> & <script>alert(1)</script>';
  await createRoom(page, title);
  await expect(page.getByTestId('room-link').filter({ hasText: title })).toHaveCount(1);
  await expect(page.getByTestId('my-rooms').locator('b, script')).toHaveCount(0);
});

test('without JavaScript the delete form posts at once, with no question', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const questions: string[] = [];
  page.on('dialog', async (dialog) => {
    questions.push(dialog.message());
    await dialog.dismiss();
  });
  await register(page, uniqueEmail('nojs'));
  await createRoom(page, 'Без скриптов');

  await page.getByTestId('delete-room').click();

  await expect(page.getByTestId('no-rooms')).toBeVisible();
  expect(questions).toEqual([]);
  await context.close();
});

test("someone else's room cannot be deleted (403), and a room that does not exist is 404", async ({ browser }) => {
  const owner = await signedInPerson(browser, 'owner', 'forbidden-owner');
  const title = 'Комната владельца';
  const roomId = await createRoom(owner.page, title);
  const guest = await signedInPerson(browser, 'guest', 'forbidden-guest');

  // The guest's pages offer no delete button for it; a form posted by hand, with the guest's own
  // CSRF token, is refused with the error page.
  await guest.page.goto('/');
  const answer = guest.page.waitForResponse((r) => r.url().endsWith(`/rooms/${roomId}/delete`));
  await guest.page.evaluate((action) => {
    const form = document.createElement('form');
    form.method = 'post';
    form.action = action;
    form.append(document.querySelector('input[name="csrf_token"]')!.cloneNode());
    document.body.append(form);
    form.submit();
  }, `/rooms/${roomId}/delete`);
  expect((await answer).status()).toBe(403);
  await expect(guest.page.getByTestId('error-message')).toBeVisible();
  await expect(guest.page.getByText('HTTP 403')).toBeVisible();
  await shot(guest.page, '26-forbidden-room');

  await owner.page.reload();
  await expect(owner.page.getByTestId('room-link').filter({ hasText: title })).toHaveCount(1);

  const missing = await guest.page.goto('/rooms/000000000000000000000000');
  expect(missing?.status()).toBe(404);
  await expect(guest.page.getByTestId('error-message')).toBeVisible();
  await expect(guest.page.getByText('HTTP 404')).toBeVisible();
  await shot(guest.page, '27-room-not-found');
  for (const person of [owner, guest]) await person.context.close();
});
