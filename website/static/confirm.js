// Asks before a form marked with data-confirm is submitted (deleting a room). The question is the
// server-rendered data-confirm text, in the page's language; answering "Cancel" keeps the form
// from posting. Without JavaScript the form simply posts, as it always did.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) event.preventDefault();
});
