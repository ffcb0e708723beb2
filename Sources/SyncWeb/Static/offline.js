// Forms that wait on the device. When the node cannot be reached, an entry form is kept in this
// browser (IndexedDB) with its own submission key, listed as waiting, and sent when the node
// answers again: on load, when the device comes back online, every 20 seconds, or with the
// button. The node records a key once, so a send repeated after a lost answer records nothing
// twice. The node stays the judge: what it refuses is listed with its reasons. Every word shown
// comes from the page (data-* of #offline-words, the node's message catalogue).
(function () {
  'use strict';
  const words = document.getElementById('offline-words');
  if (!words) return;
  const say = (name, n) => (words.dataset[name] || '').replace('{n}', n);
  const user = words.dataset.user || '';
  const DB = 'syncnode-offline';
  const STORE = 'entries';

  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/sw.js').catch(() => {});
  }

  function database() {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE, { keyPath: 'key' });
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }

  async function inStore(mode, work) {
    const db = await database();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
  const all = () => inStore('readonly', (s) => s.getAll());
  const put = (item) => inStore('readwrite', (s) => s.put(item));
  const remove = (key) => inStore('readwrite', (s) => s.delete(key));

  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // Every form gets a key made here: a page kept on the device may carry a key already used.
  function freshKey(form) {
    const field = form.querySelector('input[name="_key"]');
    if (field) field.value = newKey();
  }

  async function reachable() {
    try {
      const answer = await fetch('/health', { cache: 'no-store', signal: AbortSignal.timeout(4000) });
      return answer.ok;
    } catch (e) {
      return false;
    }
  }

  function summary(form) {
    const parts = [];
    for (const field of form.querySelectorAll('.field')) {
      const input = field.querySelector('input, select');
      if (!input || !input.value) continue;
      const label = field.querySelector('label');
      const name = label ? label.childNodes[0].textContent.trim() : input.name;
      const shown = input.tagName === 'SELECT' ? input.options[input.selectedIndex].text : input.value;
      parts.push(name + '：' + shown);
    }
    return parts.slice(0, 4).join('；');
  }

  // Numbers and dates as a Chinese keyboard types them (４０) are the same numbers, as at the node.
  const halfWidth = (text) =>
    text.replace(/[\uFF01-\uFF5E]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0)).replace(/\u3000/g, ' ').trim();

  function isDate(text) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
    if (!m) return false;
    const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3];
  }

  // The plan's rule for one field, as the form carries it (data-check, data-min, data-max,
  // data-required): true when the node's own check would pass it on these grounds. The node checks
  // the rest (a project it holds, its policy, plausibility) when the entry arrives.
  function fits(input) {
    const text = halfWidth(input.value || '');
    // An update names only the fields it changes (the node checks them alone).
    const updating = input.form && input.form.querySelector('input[name="_update"]:checked');
    if (text === '') return !('required' in input.dataset) || !!updating;
    const bound = (text) => (text === undefined || text === '' ? null : Number(text));
    const min = bound(input.dataset.min);
    const max = bound(input.dataset.max);
    switch (input.dataset.check) {
      case 'int':
      case 'year':
        return /^[+-]?\d+$/.test(text) && (min === null || Number(text) >= min) && (max === null || Number(text) <= max);
      case 'real':
        return text !== '' && Number.isFinite(Number(text));
      case 'date':
        return isDate(text);
      case 'money':
        return /\d/.test(text);
      default:
        return true;
    }
  }

  // Marks each field the phone's check refuses, as the node's answer would; true when none.
  function checked(form) {
    for (const old of form.querySelectorAll('.field-error.phone')) old.remove();
    let first = null;
    for (const input of form.querySelectorAll('[data-check]')) {
      const field = input.closest('.field');
      const ok = fits(input);
      if (field) field.classList.toggle('invalid', !ok);
      if (ok) continue;
      const why = document.createElement('p');
      why.className = 'field-error phone';
      why.setAttribute('role', 'alert');
      why.textContent = (input.value ? say('should') : say('requiredWord')) + '：' + input.dataset.describe;
      input.after(why);
      first = first || input;
    }
    if (first) first.focus();
    return first === null;
  }

  async function keep(form) {
    if (!checked(form)) return;
    const body = new URLSearchParams(new FormData(form));
    const heading = document.querySelector('main h1');
    await put({
      key: body.get('_key') || newKey(), action: new URL(form.action, location.href).pathname, body: body.toString(), user: user,
      kind: heading ? heading.textContent : '', summary: summary(form), made: new Date().toISOString(), state: 'waiting',
    });
    form.reset();
    freshKey(form);
    await show();
  }

  // The form token of the signed-in session, read from a page the node answers now (a page kept
  // on the device may hold an older session's).
  async function currentToken() {
    const answer = await fetch('/entry', { cache: 'no-store', credentials: 'same-origin' });
    const page = new DOMParser().parseFromString(await answer.text(), 'text/html');
    const token = page.querySelector('input[name="csrf"]');
    const signedIn = page.getElementById('offline-words');
    if (answer.redirected || !token || !signedIn || signedIn.dataset.user !== user) return null;
    return token.value;
  }

  let sending = false;
  async function send() {
    if (sending) return;
    sending = true;
    try {
      // Oldest first: the node numbers them in the order they were made.
      const waiting = (await all())
        .filter((item) => item.state === 'waiting' && item.user === user)
        .sort((a, b) => (a.made < b.made ? -1 : 1));
      if (waiting.length === 0) return;
      let token;
      try {
        token = await currentToken();
      } catch (e) {
        return; // still unreachable
      }
      if (!token) {
        note(say('signIn'));
        return;
      }
      for (const item of waiting) {
        const body = new URLSearchParams(item.body);
        body.set('csrf', token);
        let answer;
        try {
          answer = await fetch(item.action, { method: 'POST', body: body, credentials: 'same-origin' });
        } catch (e) {
          break; // the node went away again; the rest wait
        }
        const at = new URL(answer.url);
        if (answer.redirected && at.pathname === '/mine') {
          item.state = 'recorded';
          item.seq = at.searchParams.get('recorded');
        } else if (answer.redirected && at.pathname === '/login') {
          note(say('signIn'));
          break;
        } else {
          const page = new DOMParser().parseFromString(await answer.text(), 'text/html');
          const reasons = Array.from(page.querySelectorAll('#form-errors li'), (li) => li.textContent.trim());
          const message = page.querySelector('main .message');
          if (reasons.length === 0 && message && answer.status >= 400 && answer.status < 500 && ![401, 408, 429].includes(answer.status)) {
            // The node's refusal of the write itself (the kind no longer in the plan, a role
            // that may not record, too large): resending would not change it.
            reasons.push(message.textContent.trim());
          }
          if (reasons.length === 0) {
            // Not a verdict on the entry (a busy or restarting node): it waits.
            if (message) note(message.textContent.trim());
            continue;
          }
          item.state = 'refused';
          item.reasons = reasons;
        }
        item.answered = new Date().toISOString();
        await put(item);
      }
    } finally {
      sending = false;
      await show();
    }
  }

  // What the last send could not do (a sign-in needed, a busy node), shown above the list.
  let lastNote = '';
  function note(text) {
    lastNote = text;
    const box = document.getElementById('offline-note');
    if (box) box.textContent = text;
  }

  // The list of this user's kept entries, above the page's own content.
  async function show() {
    let items;
    try {
      items = (await all()).filter((item) => item.user === user);
    } catch (e) {
      return;
    }
    let section = document.getElementById('offline-queue');
    if (items.length === 0) {
      if (section) section.remove();
      return;
    }
    if (!section) {
      section = document.createElement('section');
      section.id = 'offline-queue';
      section.className = 'card offline';
      document.querySelector('main').prepend(section);
    }
    section.replaceChildren();
    const title = document.createElement('h2');
    title.textContent = say('title');
    const line = document.createElement('p');
    line.id = 'offline-note';
    line.textContent = lastNote;
    const list = document.createElement('ul');
    items.sort((a, b) => (a.made < b.made ? -1 : 1));
    for (const item of items) {
      const row = document.createElement('li');
      row.className = 'offline-' + item.state;
      row.dataset.key = item.key;
      row.dataset.state = item.state;
      const state = document.createElement('strong');
      state.textContent = item.state === 'recorded' ? say('recorded', item.seq || '') : say(item.state);
      row.append(state, ' ' + item.kind + '：' + item.summary + ' ');
      const when = document.createElement('span');
      when.className = 'id';
      when.textContent = new Date(item.made).toLocaleString(document.documentElement.lang || 'zh-CN');
      row.append(when);
      if (item.reasons) {
        const why = document.createElement('ul');
        for (const reason of item.reasons) {
          const r = document.createElement('li');
          r.textContent = reason;
          why.append(r);
        }
        row.append(why);
      }
      const form = document.querySelector('form[data-offline]');
      if (item.state === 'refused' && form && new URL(form.action, location.href).pathname === item.action) {
        const again = document.createElement('button');
        again.type = 'button';
        again.textContent = say('reopen');
        again.addEventListener('click', () => reopen(form, item));
        row.append(' ', again);
      }
      if (item.state !== 'waiting') {
        const done = document.createElement('button');
        done.type = 'button';
        done.textContent = say('dismiss');
        done.addEventListener('click', () => remove(item.key).then(show));
        row.append(' ', done);
      }
      list.append(row);
    }
    section.append(title, line, list);
    if (items.some((item) => item.state === 'waiting')) {
      const now = document.createElement('button');
      now.type = 'button';
      now.id = 'offline-send';
      now.textContent = say('sendNow');
      now.addEventListener('click', send);
      section.append(now);
    }
  }

  // A refused entry back in its form, with its own key, to be corrected (or confirmed) and sent:
  // nothing typed is lost, and the node still records it once.
  async function reopen(form, item) {
    const body = new URLSearchParams(item.body);
    for (const input of form.querySelectorAll('input[name], select[name]')) {
      if (input.name === 'csrf') continue;
      if (input.type === 'checkbox') input.checked = body.get(input.name) === input.value;
      else if (body.has(input.name)) input.value = body.get(input.name);
    }
    await remove(item.key);
    await show();
    form.scrollIntoView();
  }

  // Asks the service worker to forget the kept pages; resolves when it has (or after 3 s).
  function forget() {
    if (!navigator.serviceWorker) return Promise.resolve();
    return navigator.serviceWorker.ready.then(
      (registration) =>
        new Promise((resolve) => {
          const channel = new MessageChannel();
          channel.port1.onmessage = () => resolve();
          registration.active.postMessage('forget', [channel.port2]);
          setTimeout(resolve, 3000);
        }));
  }

  // A new sign-in on this phone forgets the pages kept for whoever was signed in before.
  let forgotten = Promise.resolve();
  try {
    if (localStorage.getItem('syncnode-user') !== user) {
      localStorage.setItem('syncnode-user', user);
      forgotten = forget();
    }
  } catch (e) {
    // no local storage: the pages are forgotten at logout only
  }
  navigator.storage?.persist?.().catch(() => {});

  // Entry forms: sent as usual when the node answers, kept here when it does not.
  const offlineForms = document.querySelectorAll('form[data-offline]');
  // A page back from the browser's history holds the key its last send used.
  window.addEventListener('pageshow', (event) => event.persisted && offlineForms.forEach(freshKey));
  for (const form of offlineForms) {
    freshKey(form);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (await reachable()) {
        form.submit();
      } else {
        await keep(form);
      }
    });
  }

  // Logging out forgets the pages kept for this user (the entries waiting stay, under their user).
  const logout = document.querySelector('form[action="/logout"]');
  if (logout && navigator.serviceWorker) {
    logout.addEventListener('submit', () => {
      navigator.serviceWorker.controller?.postMessage('forget');
      try {
        localStorage.removeItem('syncnode-user');
      } catch (e) {
        // nothing kept to remove
      }
    });
  }

  // The entry list keeps each of its forms on the device, for a visit without the node.
  if (location.pathname === '/entry' && 'caches' in window) {
    Promise.all([navigator.serviceWorker?.ready, forgotten]).then(() => {
      for (const link of document.querySelectorAll('a[href^="/entry/"]')) fetch(link.getAttribute('href')).catch(() => {});
    });
  }

  window.addEventListener('online', send);
  setInterval(send, 20000);
  show().then(send);
  window.syncnodeOffline = { send: send, all: all, put: put };
})();
