// Progressive JavaScript for the ITB service's pages. Every page works without it; with it:
// the error summary takes focus, the prescription editor shows the chosen mode, adds and
// removes flex steps in place and recomputes the daily total as you type (the server checks
// and recomputes it again on submit), and a refill booked after its due date is flagged at once.
(function () {
  'use strict';

  function onReady(fn) {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', fn); else fn();
  }

  function minutesOf(text) {
    var m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
    if (!m) return null;
    var h = Number(m[1]), min = Number(m[2]);
    if (h > 23 || min > 59) return null;
    return h * 60 + min;
  }

  // A rate as typed, in whole nanograms a day (micrograms to 3 decimals, as the server reads
  // it), or null when the server would refuse it (not a number, 0, above 5000 micrograms a day).
  function rateOf(text) {
    var m = /^(\d{1,6})(?:\.(\d{1,3}))?$/.exec(text.trim());
    if (!m) return null;
    var ng = Number(m[1]) * 1000 + (m[2] ? Number((m[2] + '00').slice(0, 3)) : 0);
    if (ng <= 0 || ng > 5000000) return null;
    return ng;
  }

  // The day's total as itb-dose adds it up: each step's rate for the minutes until the next
  // step (the last until midnight), in whole numbers, rounded down to the nanogram once; then
  // shown to 0.01 micrograms, halves up, as the server shows it.
  function dailyTotal(rows) {
    var steps = [];
    for (var i = 0; i < rows.length; i++) {
      var start = minutesOf(rows[i].querySelector('.step-start').value);
      var rate = rateOf(rows[i].querySelector('.step-rate').value);
      if (start === null || rate === null) return null;
      steps.push([start, rate]);
    }
    if (!steps.length || steps[0][0] !== 0) return null;
    var sum = 0; // nanogram-minutes: at most 5e6 x 1440, well within exact integers
    for (var j = 0; j < steps.length; j++) {
      var end = j + 1 < steps.length ? steps[j + 1][0] : 1440;
      if (end <= steps[j][0]) return null;
      sum += steps[j][1] * (end - steps[j][0]);
    }
    var ng = Math.floor(sum / 1440);
    var hundredths = Math.floor((ng + 5) / 10);
    var whole = Math.floor(hundredths / 100), part = hundredths % 100;
    if (part === 0) return String(whole);
    return whole + '.' + (part < 10 ? '0' + part : String(part)).replace(/0$/, '');
  }

  function editor(form) {
    var body = form.querySelector('#flex-steps tbody');
    var out = form.querySelector('#daily-total');
    var add = form.querySelector('#add-step');
    if (!body || !out || !add) return;

    function renumber() {
      var rows = body.querySelectorAll('tr.flex-step');
      for (var i = 0; i < rows.length; i++) {
        var n = i + 1, row = rows[i];
        row.cells[0].textContent = String(n);
        var start = row.querySelector('.step-start'), rate = row.querySelector('.step-rate');
        start.id = 'flex.steps[' + n + '].start';
        rate.id = 'flex.steps[' + n + '].rate';
        var labels = row.querySelectorAll('label');
        labels[0].htmlFor = start.id; labels[0].textContent = 'Step ' + n + ' starts at';
        labels[1].htmlFor = rate.id; labels[1].textContent = 'Step ' + n + ' rate in micrograms a day';
        var remove = row.querySelector('button');
        remove.value = 'remove_' + n; remove.textContent = 'Remove step ' + n;
      }
      add.disabled = rows.length >= 13;
    }

    function recompute() {
      var total = dailyTotal(body.querySelectorAll('tr.flex-step'));
      out.textContent = total === null ? 'not yet known: check the steps' : total + ' micrograms a day';
    }

    form.addEventListener('click', function (event) {
      var button = event.target.closest('button[name=action]');
      if (!button) return;
      if (button.value === 'add_step') {
        event.preventDefault();
        var rows = body.querySelectorAll('tr.flex-step');
        var last = rows[rows.length - 1];
        var copy = last.cloneNode(true);
        copy.querySelectorAll('.error-message').forEach(function (e) { e.remove(); });
        copy.querySelector('.step-start').value = '';
        copy.querySelector('.step-rate').value = '';
        body.appendChild(copy);
        renumber(); recompute();
        copy.querySelector('.step-start').focus();
      } else if (button.value.indexOf('remove_') === 0) {
        var all = body.querySelectorAll('tr.flex-step');
        if (all.length <= 1) return; // the server explains why a day keeps one step
        event.preventDefault();
        button.closest('tr').remove();
        renumber(); recompute();
        add.focus();
      }
    });
    form.addEventListener('input', function (event) {
      if (event.target.closest('#flex-steps')) recompute();
    });

    // Show only the chosen mode's fields.
    var radios = form.querySelectorAll('input[name=mode]');
    function showMode() {
      var chosen = form.querySelector('input[name=mode]:checked');
      var mode = chosen ? chosen.value : '';
      form.querySelectorAll('[data-mode]').forEach(function (panel) {
        panel.hidden = panel.getAttribute('data-mode') !== mode;
      });
      var ptm = form.querySelector('#ptm-fields');
      if (ptm) ptm.hidden = mode === 'stopped';
    }
    radios.forEach(function (r) { r.addEventListener('change', showMode); });
    showMode();
    renumber();
  }

  function lateBooking(form) {
    var due = form.getAttribute('data-due');
    var input = form.querySelector('input[name=on]');
    var warning = form.querySelector('.js-late');
    if (!due || !input || !warning) return;
    function check() { warning.hidden = !(input.value && input.value > due); }
    input.addEventListener('input', check);
    input.addEventListener('change', check);
    check();
  }

  onReady(function () {
    var summary = document.getElementById('error-summary');
    if (summary) summary.focus();
    var form = document.getElementById('prescription-editor');
    if (form) editor(form);
    document.querySelectorAll('form.book-refill').forEach(lateBooking);
  });
})();
