import { test, expect, shot, nonce as randomNonce, uniqueEmail, register, createRoom, logOut, expectConnected } from './support';

test('search refuses short text and finds rooms of other users by part of a word, in any case', async ({ page }) => {
  // Someone else owns the rooms; the searcher finds them.
  await register(page, uniqueEmail('author'));
  const nonce = randomNonce();
  const russian = `Планирование релиза ${nonce}`;
  const english = `Weekly Standup ${nonce}`;
  const russianId = await createRoom(page, russian);
  await createRoom(page, english);
  await logOut(page);
  await register(page, uniqueEmail('searcher'));

  const query = page.getByTestId('search-query');
  await query.fill('ланир');
  await page.getByTestId('search-submit').click();
  await expect(page.getByTestId('search-error')).toBeVisible();
  await expect(page.getByTestId('search-result')).toHaveCount(0);
  await shot(page, '09-search-too-short');

  await page.getByTestId('search-query').fill(`АНИРОВАНИЕ РЕЛИЗА ${nonce}`);
  await page.getByTestId('search-submit').click();
  await expect(page.getByTestId('search-result')).toHaveCount(1);
  await expect(page.getByTestId('search-result')).toContainText(russian);

  await page.getByTestId('search-query').fill(`standup ${nonce}`);
  await page.getByTestId('search-submit').click();
  await expect(page.getByTestId('search-result')).toHaveCount(1);
  await expect(page.getByTestId('search-result')).toContainText(english);

  await page.getByTestId('search-query').fill(nonce);
  await page.getByTestId('search-submit').click();
  await expect(page.getByTestId('search-result')).toHaveCount(2);
  await shot(page, '10-search-results');

  await page.getByTestId('search-result').filter({ hasText: russian }).getByRole('link').first().click();
  await expect(page).toHaveURL(new RegExp(`/rooms/${russianId}$`));
  await expect(page.getByTestId('chat-title')).toHaveText(russian);
  await expectConnected(page);
  await shot(page, '23-chat-from-search');
});
