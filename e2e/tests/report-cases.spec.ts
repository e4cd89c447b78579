// The assignment's cases that the other scenarios do not photograph: an empty login form, a
// successful login, logging out, a room title refused, a search that finds nothing, and the
// interface in English. Each test checks the state first and only then takes the screenshot the
// report shows (docs/screenshots.tsv, rows 40-49).
import { test, expect, shot, uniqueEmail, nonce, register, logIn, logOut, createRoom, PASSWORD } from './support';

test('an empty login form is refused with a message, and nobody is signed in', async ({ page }) => {
  await page.goto('/login');
  const answer = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/login'));
  await page.getByTestId('login-submit').click();
  expect((await answer).status(), 'an empty form is a validation error').toBe(422);

  const error = page.getByTestId('form-error');
  await expect(error).toBeVisible();
  await expect(error).toHaveAttribute('role', 'alert');
  await expect(error).not.toBeEmpty();
  await expect(page.getByTestId('current-user')).toHaveCount(0);
  await expect(page).toHaveURL(/\/login$/);
  await shot(page, '40-login-empty-submitted');
});

test('a registered user logs in with email and password and lands on their rooms', async ({ page }) => {
  const email = uniqueEmail('returning');
  await register(page, email);
  await createRoom(page, 'Книжный клуб');
  await logOut(page);

  await page.goto('/login');
  await page.locator('input[name="email"]').fill(email);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await expect(page.locator('input[name="password"]')).toHaveAttribute('type', 'password');
  await shot(page, '41-login-form');
  await page.getByTestId('login-submit').click();

  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('current-user')).toHaveText(email);
  await expect(page.getByTestId('my-rooms').getByTestId('room-link')).toHaveText(['Книжный клуб']);
});

test('logging out ends the session: the start page invites to log in and private pages send to the login form', async ({ page }) => {
  const email = uniqueEmail('leaving');
  await register(page, email);
  const roomId = await createRoom(page, 'Вечерний созвон');

  await logOut(page);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator('a[href="/register"]').first()).toBeVisible();
  await expect(page.locator('a[href="/login"]').first()).toBeVisible();
  await expect(page.getByTestId('my-rooms')).toHaveCount(0);
  await shot(page, '42-after-logout');

  // The old session no longer opens anything private.
  await page.goto(`/rooms/${roomId}`);
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByTestId('current-user')).toHaveCount(0);
  const ticket = await page.request.post(`/api/rooms/${roomId}/ticket`, { headers: { Origin: new URL(page.url()).origin } });
  expect(ticket.status(), 'no ticket after logging out').toBe(401);
});

test('a room title that is too long is refused with a message, and no room is created', async ({ page }) => {
  await register(page, uniqueEmail('titles'));
  const tooLong = 'Очень длинное название комнаты '.repeat(4).trim(); // 123 characters, the limit is 100
  expect([...tooLong].length).toBeGreaterThan(100);

  await page.goto('/');
  await page.getByTestId('room-title').fill(tooLong);
  const answer = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/rooms'));
  await page.getByTestId('create-room').click();
  expect((await answer).status()).toBe(422);

  const error = page.getByTestId('form-error');
  await expect(error).toBeVisible();
  await expect(error).toHaveAttribute('role', 'alert');
  await expect(error).toContainText('100');
  await expect(page.getByTestId('room-item')).toHaveCount(0);
  await expect(page.getByTestId('no-rooms')).toBeVisible();
  await shot(page, '43-room-title-too-long');
});

test('a search of six or more characters that no title contains says that nothing was found', async ({ page }) => {
  await register(page, uniqueEmail('seeker'));
  const query = `нет такой ${nonce()}`;

  await page.getByTestId('search-query').fill(query);
  await page.getByTestId('search-submit').click();

  await expect(page).toHaveURL(/\/search\?q=/);
  await expect(page.getByTestId('search-error')).toHaveCount(0);
  await expect(page.getByTestId('search-result')).toHaveCount(0);
  await expect(page.getByTestId('no-results')).toBeVisible();
  await expect(page.getByTestId('search-query')).toHaveValue(query);
  await shot(page, '44-search-no-results');
});

test('the interface switches to English and stays English across pages', async ({ page }) => {
  const email = uniqueEmail('english');
  await register(page, email);
  await createRoom(page, 'Weekly standup');
  await createRoom(page, 'Планирование спринта');

  await page.getByTestId('lang-en').click();
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('lang-en')).toHaveAttribute('aria-current', 'true');
  await expect(page.getByTestId('logout')).toHaveText('Log out');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('My rooms');
  await expect(page.getByTestId('create-room')).toHaveText('Create');
  // The rooms themselves keep their titles, in whatever language they were given.
  await expect(page.getByTestId('my-rooms').getByTestId('room-link')).toHaveText(['Планирование спринта', 'Weekly standup']);
  await shot(page, '45-home-english');

  // The choice is remembered: another page comes in English too.
  await page.goto('/search');
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.getByTestId('search-submit')).toHaveText('Search');
});
