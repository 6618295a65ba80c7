// The dashboard's only script (served as a file: the Content-Security-Policy allows no
// inline script). It keeps [data-live] regions fresh and checks JSON fields before submit.
"use strict";

(function () {
  function busy(region) {
    // the operator is using it: focus inside, or a field typed into
    if (region.contains(document.activeElement) && document.activeElement !== document.body) {
      return region.querySelector("input, textarea, select") !== null;
    }
    var fields = region.querySelectorAll("input:not([type=hidden]):not([type=checkbox]), textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].value !== fields[i].defaultValue) {
        return true;
      }
    }
    return false;
  }

  function replaceLive(fresh) {
    var focused = document.activeElement && document.activeElement.id;
    var checked = {};
    document.querySelectorAll("input[type=checkbox][name=run]:checked").forEach(function (box) {
      checked[box.value] = true;
    });
    document.querySelectorAll("[data-live][id]").forEach(function (region) {
      var next = fresh.getElementById(region.id);
      if (next && !busy(region)) {
        region.replaceWith(document.importNode(next, true));
      }
    });
    document.querySelectorAll("input[type=checkbox][name=run]").forEach(function (box) {
      box.checked = !!checked[box.value];
    });
    if (focused) {
      var again = document.getElementById(focused);
      if (again && again !== document.activeElement) {
        again.focus();
      }
    }
  }

  function poll(every) {
    // a page that carries an ETag is asked "anything new?": 304 when nothing changed
    var etag = document.body.getAttribute("data-etag");
    var timer = window.setInterval(function () {
      if (document.hidden) {
        return;
      }
      var headers = { "X-Poll": "1" };
      if (etag) {
        headers["If-None-Match"] = etag;
      }
      fetch(window.location.href, { credentials: "same-origin", cache: "no-store", headers: headers })
        .then(function (answer) {
          if (answer.status === 304) {
            return null;
          }
          if (!answer.ok) {
            throw new Error("HTTP " + answer.status);
          }
          etag = answer.headers.get("ETag") || etag;
          return answer.text();
        })
        .then(function (text) {
          if (text === null) {
            return;
          }
          var fresh = new DOMParser().parseFromString(text, "text/html");
          if (!fresh.body.hasAttribute("data-live-poll")) {
            // the run ended: show the final page (its actions are gone) and stop
            window.clearInterval(timer);
            var main = fresh.getElementById("main");
            if (main) {
              document.getElementById("main").replaceWith(document.importNode(main, true));
            }
            return;
          }
          replaceLive(fresh);
        })
        .catch(function () {
          /* the next tick tries again */
        });
    }, every);
  }

  function checkJson(field) {
    var text = field.value.trim();
    var message = "";
    if (text) {
      try {
        var value = JSON.parse(text);
        var kind = field.dataset.json;
        if (kind === "object" &&
            (value === null || typeof value !== "object" || Array.isArray(value))) {
          message = "Enter a JSON object, like {\"key\": 1}.";
        } else if (kind === "arguments" && (value === null || typeof value !== "object")) {
          message = "Enter a JSON object of arguments by name, or an array of them in order.";
        }
      } catch (err) {
        message = "Not valid JSON: " + err.message;
      }
    }
    field.setCustomValidity(message);
    return message === "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var every = parseInt(document.body.getAttribute("data-live-poll") || "0", 10);
    if (every > 0) {
      poll(every);
    }
    document.addEventListener("input", function (event) {
      if (event.target.matches && event.target.matches("textarea[data-json]")) {
        checkJson(event.target);
      }
    });
    document.addEventListener("submit", function (event) {
      var fields = event.target.querySelectorAll("textarea[data-json]");
      for (var i = 0; i < fields.length; i++) {
        if (!checkJson(fields[i])) {
          event.preventDefault();
          fields[i].reportValidity();
          return;
        }
      }
    }, true);
  });
})();
