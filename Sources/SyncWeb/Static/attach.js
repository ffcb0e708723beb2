// The record page's upload of a photo or file: reduced on the phone when asked (a canvas
// re-encode to about 1600 px, as the county's link is slow), then sent as the request's body
// with the page's form token; the node's answer is shown, and the page reloaded on success.
(function () {
  'use strict';
  var form = document.getElementById('attach-form');
  if (!form) return;
  var status = form.querySelector('.status');
  var button = form.querySelector('button');

  function reduce(file) {
    return new Promise(function (resolve) {
      if (!/^image\/(jpeg|png|webp)$/.test(file.type) || typeof createImageBitmap !== 'function') return resolve(file);
      createImageBitmap(file).then(function (bitmap) {
        var scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
        if (scale >= 1) return resolve(file);
        var canvas = document.createElement('canvas');
        canvas.width = Math.round(bitmap.width * scale);
        canvas.height = Math.round(bitmap.height * scale);
        canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) { resolve(blob && blob.size < file.size ? blob : file); }, 'image/jpeg', 0.85);
      }, function () { resolve(file); });
    });
  }

  // Not a <form>: nothing is ever sent by the browser's own submission, only by this script.
  button.addEventListener('click', function () {
    var input = form.querySelector('input[type=file]');
    var file = input.files && input.files[0];
    if (!file) return;
    button.disabled = true;
    status.textContent = form.dataset.sending || '…';
    var wanted = form.querySelector('input[name=reduce]');
    (wanted && wanted.checked ? reduce(file) : Promise.resolve(file)).then(function (body) {
      var caption = form.querySelector('input[name=caption]').value;
      // A reduced photo is a JPEG whatever it was: its name says so.
      var name = body === file ? file.name : file.name.replace(/\.[^.]*$/, '') + '.jpg';
      var url = form.dataset.action + '?caption=' + encodeURIComponent(caption) + '&name=' + encodeURIComponent(name);
      return fetch(url, {
        method: 'POST', body: body, credentials: 'same-origin',
        headers: { 'X-Form-Token': form.dataset.csrf, 'Content-Type': 'application/octet-stream' }
      });
    }).then(function (response) {
      // A page instead of the node's answer (the session ended): said in words, not a status code.
      return response.json().catch(function () { return { message: form.dataset.failed }; }).then(function (answer) {
        status.textContent = answer.message || form.dataset.failed;
        if (response.ok) setTimeout(function () { location.reload(); }, 600);
        else button.disabled = false;
      });
    }).catch(function () {
      status.textContent = form.dataset.offline || '?';
      button.disabled = false;
    });
  });
})();
