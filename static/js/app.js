// Behaviour every page shares, kept out of the markup so the Content-Security-Policy can
// forbid inline script and eval.
(function () {
  "use strict";

  // A form marked reset-on-success empties itself once its htmx request has gone through
  // (a note posted, a reason recorded); a refusal keeps what the person typed.
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.detail.elt;
    if (form instanceof HTMLFormElement && form.classList.contains("reset-on-success") && event.detail.xhr.status < 400) {
      form.reset();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });
})();
