// Sends the payment on to the article's site as soon as the page is read:
// one click on the paywall is all the reader does. Without scripts the
// page's button sends the same form.
const form = document.getElementById('pay');
if (form instanceof HTMLFormElement) {
  form.classList.add('sending');
  form.submit();
}
