// The wallet's question, in the tab of the article: pay or not. It is the
// extension's own page, which no site can script, frame or fill in.
import {$, call, money, onSubmit, say} from './ui.js';

const id = new URLSearchParams(location.search).get('id') ?? '';
const reasons = /** @type {Record<string,string>} */ ({
  'per-article': 'This article costs more than your limit per article.',
  'per-site-day': 'This would take the site over your daily limit for it.',
  'new-site': 'You have not paid this site before, and asked to be asked first.',
  'locked': 'Unlock your wallet to pay for this article.',
  'no-tokens': 'Your wallet has not enough tokens for this article: buy more from its button in the toolbar.',
});
let locked = false;

async function render() {
  const {ask, status: s} = await call('ask', {id});
  const ch = ask.challenge;
  locked = Boolean(s.locked);
  $('ask-reason').textContent = reasons[ask.reason] ?? '';
  $('ask-site').textContent = ask.host;
  $('ask-realm').textContent = ch.realm || ch.vendor;
  $('ask-product').textContent = ch.product;
  $('ask-price').textContent = `${ch.price} token${ch.price === 1 ? '' : 's'}`;
  if (locked) {
    $('ask-money').textContent = '';
    $('ask-after').textContent = 'unlock to see';
  } else {
    $('ask-money').textContent = `(${money(ch.price, s.unitValue, s.currency)})`;
    const after = s.balance.tokens - ch.price;
    $('ask-after').textContent = `${after} tokens (${money(Math.max(after, 0), s.unitValue, s.currency)})`;
  }
  $('ask-unlock').hidden = !locked;
  $('pay').textContent = locked ? 'Unlock' : `Pay ${ch.price} token${ch.price === 1 ? '' : 's'}`;
  $('pay').disabled = ask.reason === 'no-tokens';
  if (locked) $('ask-password').focus();
}

onSubmit(/** @type {HTMLFormElement} */ ($('ask-form')), async () => {
  if (locked) await call('unlock', {password: $('ask-password').value});
  await call('answer', {id, yes: true});
});
$('decline').addEventListener('click', () => {
  call('answer', {id, yes: false}).catch((err) => say('error', err.message));
});

render().catch((e) => say('error', e.message));
