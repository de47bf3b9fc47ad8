// Setting the wallet up: a bank, an account, tokens.
import {$, call, onSubmit, say} from './ui.js';

const form = /** @type {HTMLFormElement} */ ($('setup-form'));
onSubmit(form, async () => {
  const mode = /** @type {HTMLInputElement} */ (form.querySelector('input[name=mode]:checked')).value;
  const r = await call('setup', {
    bank: $('bank').value, username: $('username').value, password: $('password').value,
    mode, tokens: Number($('tokens').value),
  });
  $('password').value = '';
  form.hidden = true;
  $('done').hidden = false;
  say('message', r.message);
});

call('status').then((s) => {
  if (s.setup) {
    form.hidden = true;
    $('done').hidden = false;
    say('message', `This browser already has a wallet (${s.username} at ${s.bank}).`);
  }
}).catch((e) => say('error', e.message));
