import {
  test,
  expect,
  shot,
  uniqueEmail,
  register,
  logIn,
  logOut,
  emailField,
  passwordField,
  createRoom,
  expectConnected,
  PASSWORD,
} from './support';

test('a visitor is invited to register or log in, registers, logs out and logs in again', async ({ page }) => {
  const email = uniqueEmail('visitor');

  await page.goto('/');
  await expect(page.locator('a[href="/register"]').first()).toBeVisible();
  await expect(page.locator('a[href="/login"]').first()).toBeVisible();
  await shot(page, '01-landing');

  await page.locator('a[href="/register"]').first().click();
  await expect(page).toHaveURL(/\/register$/);
  await emailField(page).fill(email);
  await passwordField(page).fill(PASSWORD);
  await shot(page, '02-register-form');
  await page.getByTestId('register-submit').click();
  await expect(page.getByTestId('current-user')).toHaveText(email);
  await shot(page, '03-home-after-register');

  await logOut(page);
  await expect(page.locator('a[href="/login"]').first()).toBeVisible();

  await logIn(page, email.toUpperCase());
  await expect(page.getByTestId('current-user')).toHaveText(email);
});

test('a wrong password shows the error message and keeps the visitor logged out', async ({ page }) => {
  const email = uniqueEmail('forgetful');
  await register(page, email);
  await logOut(page);

  await logIn(page, email, 'not the right password');

  const error = page.getByTestId('form-error');
  await expect(error).toBeVisible();
  await expect(error).toHaveAttribute('role', 'alert');
  await expect(page.getByTestId('current-user')).toHaveCount(0);
  await expect(emailField(page)).toHaveValue(email);
  await shot(page, '04-login-wrong-password');
});

test('registering with a short password or a taken email explains what is wrong', async ({ page }) => {
  const email = uniqueEmail('taken');
  await register(page, email);
  await logOut(page);

  await page.goto('/register');
  await emailField(page).fill(uniqueEmail('short'));
  await passwordField(page).fill('short');
  await page.getByTestId('register-submit').click();
  await expect(page.getByTestId('form-error')).toBeVisible();
  await shot(page, '05-register-short-password');

  await emailField(page).fill(email);
  await passwordField(page).fill(PASSWORD);
  await page.getByTestId('register-submit').click();
  await expect(page.getByTestId('form-error')).toBeVisible();
  await expect(page.getByTestId('current-user')).toHaveCount(0);
  await shot(page, '06-register-email-taken');
});

test('a room link opened while logged out comes back to the room after logging in, or after registering', async ({ page, browser }) => {
  const email = uniqueEmail('returning');
  await register(page, email);
  const roomId = await createRoom(page, 'Комната по ссылке');
  await logOut(page);

  await page.goto(`/rooms/${roomId}`);
  await expect(page).toHaveURL(new RegExp(`/login\\?next=%2Frooms%2F${roomId}$`));
  await expect(page.getByTestId('login-to-continue')).toBeVisible();
  await emailField(page).fill(email);
  await passwordField(page).fill(PASSWORD);
  await page.getByTestId('login-submit').click();

  await expect(page).toHaveURL(new RegExp(`/rooms/${roomId}$`));
  await expect(page.getByTestId('chat-title')).toHaveText('Комната по ссылке');
  await expectConnected(page);

  // Someone new follows the same link, goes on to the register form and lands in the room too.
  const context = await browser.newContext();
  const newcomer = await context.newPage();
  await newcomer.goto(`/rooms/${roomId}`);
  await newcomer.locator('a[href^="/register?next="]').click();
  await expect(newcomer).toHaveURL(/\/register\?next=/);
  await emailField(newcomer).fill(uniqueEmail('newcomer'));
  await passwordField(newcomer).fill(PASSWORD);
  await newcomer.getByTestId('register-submit').click();
  await expect(newcomer).toHaveURL(new RegExp(`/rooms/${roomId}$`));
  await expectConnected(newcomer);
  await context.close();
});

test('a next that points at another site is not followed after login', async ({ page }) => {
  const email = uniqueEmail('wary');
  await register(page, email);
  await logOut(page);

  for (const next of ['//evil.example', 'https://evil.example', '/\\evil.example']) {
    await page.goto(`/login?next=${encodeURIComponent(next)}`);
    await emailField(page).fill(email);
    await passwordField(page).fill(PASSWORD);
    await page.getByTestId('login-submit').click();
    await expect(page).toHaveURL(/\/$/);
    expect(new URL(page.url()).host, next).toBe(new URL(process.env.BASE_URL ?? 'http://127.0.0.1:8080').host);
    await logOut(page);
  }
});
