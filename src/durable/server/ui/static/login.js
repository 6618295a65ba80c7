// The login page: sends the token as the bearer header; the server answers with an
// HttpOnly session cookie, then the page goes where the operator was headed.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("login");
  var error = document.getElementById("login-error");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Authorization: "Bearer " + document.getElementById("token").value },
    }).then(function (answer) {
      if (answer.ok) {
        window.location.assign(form.dataset.next);
      } else {
        error.textContent = "That token is not the server's.";
        error.hidden = false;
      }
    }).catch(function (err) {
      error.textContent = "The server did not answer: " + err.message;
      error.hidden = false;
    });
  });
});
