import { test, expect, shot, uniqueEmail, register, logIn, logOut, emailField, passwordField, PASSWORD } from './support';

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
