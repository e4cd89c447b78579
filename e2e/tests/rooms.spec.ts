import { test, expect, shot, uniqueEmail, register, createRoom } from './support';

test('a user creates three rooms, sees them newest first, deletes one and it stays gone', async ({ page }) => {
  await register(page, uniqueEmail('owner'));
  const titles = ['Планирование спринта', 'Weekly standup', 'Random talk'];
  for (const title of titles) {
    await createRoom(page, title);
  }

  const links = page.getByTestId('my-rooms').getByTestId('room-link');
  await expect(links).toHaveText([...titles].reverse());
  await shot(page, '07-my-rooms');

  await page
    .getByTestId('room-item')
    .filter({ hasText: titles[1] })
    .getByTestId('delete-room')
    .click();
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
