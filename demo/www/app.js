/*
 * The demo app: sign-in, Settings -> Integrations (connect TikTok),
 * Analytics (the video grid) and Export to TikTok (the posting form), each
 * on the module's /api/tiktok/ with the session cookie the sign-in set.
 */
"use strict";

var TITLE_MAX = 150;        /* tiktok_title_max_chars in the demo's nginx */

var PRIVACY_LABELS = {
  PUBLIC_TO_EVERYONE: "Everyone",
  MUTUAL_FOLLOW_FRIENDS: "Friends",
  FOLLOWER_OF_CREATOR: "Followers",
  SELF_ONLY: "Only me"
};

var $ = function (id) { return document.getElementById(id); };
var state = { user: null, status: null, creator: null, cursor: null };


/* --- the API ------------------------------------------------------------ */

/* -> {status, json}; never throws for an HTTP error */
function api(method, path, body) {
  var init = { method: method, cache: "no-store",
               credentials: "same-origin", headers: {} };

  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }

  return fetch("/api/tiktok/" + path, init).then(function (r) {
    return r.json().catch(function () { return null; }).then(function (j) {
      return { status: r.status, json: j || {} };
    });
  });
}

function errorText(res) {
  var e = res.json && res.json.error;

  return e ? e.message : "The request failed (HTTP " + res.status + ")";
}

function banner(text, bad) {
  var b = $("banner");

  b.textContent = text;
  b.className = bad ? "bad" : "";
  b.hidden = !text;
}

function fmt(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : "–";
}

function el(tag, attrs, text) {
  var e = document.createElement(tag);

  Object.keys(attrs || {}).forEach(function (k) {
    e.setAttribute(k, attrs[k]);
  });
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}


/* --- views -------------------------------------------------------------- */

function show(view) {
  ["signin", "settings", "analytics", "export"].forEach(function (v) {
    $("view-" + v).hidden = v !== view;
  });
  document.querySelectorAll("#nav a").forEach(function (a) {
    a.classList.toggle("active", a.getAttribute("data-view") === view);
  });

  if (view === "settings") {
    loadStatus();
  } else if (view === "analytics") {
    loadVideos(true);
  } else if (view === "export") {
    loadExport();
  }
}

function route() {
  var view = (location.hash || "#settings").slice(1);

  if (!state.user) {
    return show("signin");
  }
  show(["settings", "analytics", "export"].indexOf(view) >= 0
       ? view : "settings");
}


/* --- Settings -> Integrations ------------------------------------------- */

function loadStatus() {
  return api("GET", "status").then(function (res) {
    var s = res.json, connected = res.status === 200 && s.connected;

    state.status = connected ? s : null;
    $("tt-account").hidden = !connected;
    $("disconnect").hidden = !connected;
    $("connect").hidden = connected && !s.needs_reconnect;
    $("connect").textContent = connected ? "Reconnect TikTok"
                                         : "Connect TikTok";

    if (res.status !== 200) {
      $("tt-state").textContent = errorText(res);
    } else if (!connected) {
      $("tt-state").textContent = "Not connected. Connect your TikTok "
        + "account to see your videos' analytics and export to TikTok.";
    } else {
      $("tt-state").textContent = s.needs_reconnect
        ? "Connection failed. Try reconnecting."
        : "Connected";
      $("tt-name").textContent = s.display_name;
      $("tt-avatar").src = s.avatar_url || "";
    }
    return connected;
  });
}

$("disconnect").onclick = function () {
  $("disconnect").disabled = true;
  api("POST", "disconnect").then(function (res) {
    $("disconnect").disabled = false;
    banner(res.status === 200 ? "TikTok disconnected" : errorText(res),
           res.status !== 200);
    loadStatus();
  });
};


/* --- Analytics ---------------------------------------------------------- */

function videoCard(v) {
  var card = el("article", { "class": "video", "data-id": v.id });
  var dl = el("dl");
  var m = v.metrics || {};

  card.appendChild(el("img", { src: v.cover_image_url || "", alt: "",
                               loading: "lazy", "class": "cover" }));
  card.appendChild(el("div", { "class": "title" }, v.title || "(untitled)"));
  [["Views", "view_count"], ["Likes", "like_count"],
   ["Comments", "comment_count"], ["Shares", "share_count"]]
    .forEach(function (pair) {
      dl.appendChild(el("dt", {}, pair[0]));
      dl.appendChild(el("dd", { "class": pair[1] }, fmt(m[pair[1]])));
    });
  card.appendChild(dl);
  return card;
}

function loadVideos(first) {
  var path = "videos?max_count=12";

  if (first) {
    $("videos").textContent = "";
    state.cursor = null;
  } else if (state.cursor) {
    path += "&cursor=" + encodeURIComponent(state.cursor);
  }
  $("videos-note").textContent = "Loading your TikTok videos…";

  return api("GET", path).then(function (res) {
    if (res.status !== 200) {
      $("videos-note").textContent = errorText(res)
        + (res.json.error && res.json.error.code === "not_connected"
           ? ": connect it in Settings → Integrations." : "");
      $("more").hidden = true;
      return;
    }
    res.json.videos.forEach(function (v) {
      $("videos").appendChild(videoCard(v));
    });
    state.cursor = res.json.cursor;
    $("more").hidden = !res.json.has_more;
    $("videos-note").textContent = res.json.videos.length || !first
      ? "Your TikTok videos, newest first"
        + (res.json.cached ? " (cached " + res.json.fetched_at + ")" : "")
      : "No videos on this TikTok account yet.";
  });
}

$("more").onclick = function () { loadVideos(false); };


/* --- Export to TikTok --------------------------------------------------- */

function chars(s) {
  return Array.from(s).length;          /* Unicode characters, as TikTok */
}

function checkForm() {
  var n = chars($("caption").value);
  var over = n > TITLE_MAX;
  var disclose = $("disclose").checked;
  var branded = disclose && $("brand-content").checked;
  var later = $("when-later").checked;
  var problem = "";

  $("counter").textContent = n;
  $("counter").parentNode.classList.toggle("over", over);
  $("disclose-options").hidden = !disclose;
  $("schedule-at").hidden = !later;

  /* branded content cannot be private (TikTok's rule) */
  Array.prototype.forEach.call($("privacy").options, function (o) {
    if (o.value === "SELF_ONLY") {
      o.disabled = branded;
      o.textContent = PRIVACY_LABELS.SELF_ONLY
        + (branded ? " (not for branded content)" : "");
    }
  });
  if (branded && $("privacy").value === "SELF_ONLY") {
    $("privacy").value = "";
  }

  if (disclose) {
    $("disclose-label").textContent =
      branded ? "Your video will be labeled \"Paid partnership\"."
      : $("brand-organic").checked
        ? "Your video will be labeled \"Promotional content\"."
        : "Choose what you are promoting.";
  }
  $("consent").textContent = "By posting, you agree to TikTok's "
    + (branded ? "Branded Content Policy and " : "")
    + "Music Usage Confirmation.";

  if (over) {
    problem = "The caption is longer than " + TITLE_MAX + " characters.";
  } else if (!$("privacy").value) {
    problem = "Choose who can view this video.";
  } else if (disclose && !branded && !$("brand-organic").checked) {
    problem = "Choose what the video promotes, or turn disclosure off.";
  } else if (later && !$("schedule-at").value) {
    problem = "Choose when to post.";
  }

  $("post").disabled = problem !== "";
  $("post").textContent = later ? "Schedule" : "Post to TikTok";
  $("post").title = problem;
  return problem;
}

function fillCreator(c) {
  var sel = $("privacy");

  $("creator-name").textContent = c.nickname;
  $("creator-username").textContent = c.username ? "@" + c.username : "";
  $("creator-avatar").src = c.avatar_url || "";

  /* TikTok's rule: the creator picks; nothing is chosen for them */
  while (sel.options.length > 1) {
    sel.remove(1);
  }
  sel.value = "";
  c.privacy_level_options.forEach(function (p) {
    sel.appendChild(el("option", { value: p }, PRIVACY_LABELS[p] || p));
  });

  [["comment", c.comment_disabled], ["duet", c.duet_disabled],
   ["stitch", c.stitch_disabled]].forEach(function (pair) {
    var box = $("allow-" + pair[0]);

    box.checked = false;
    box.disabled = pair[1];
    $("label-" + pair[0]).classList.toggle("disabled", pair[1]);
    $("label-" + pair[0]).title = pair[1]
      ? "Turned off in this account's TikTok settings" : "";
  });
  $("interaction-note").hidden = !(c.comment_disabled || c.duet_disabled
                                   || c.stitch_disabled);
  $("interaction-note").textContent = "Greyed out: turned off in your "
    + "TikTok account's settings.";
}

function loadExport() {
  loadPosts();

  return api("GET", "creator").then(function (res) {
    $("export-form").hidden = res.status !== 200;
    if (res.status !== 200) {
      $("export-note").textContent = errorText(res)
        + (res.json.error && res.json.error.code === "not_connected"
           ? ": connect it in Settings → Integrations." : "");
      return;
    }
    state.creator = res.json;
    $("export-note").textContent = "";
    fillCreator(res.json);
    checkForm();
  });
}

["caption", "privacy", "disclose", "brand-organic", "brand-content",
 "when-now", "when-later", "schedule-at"].forEach(function (id) {
  $(id).addEventListener("input", checkForm);
  $(id).addEventListener("change", checkForm);
});

$("export-form").onsubmit = function (ev) {
  var later = $("when-later").checked;
  var body;

  ev.preventDefault();
  if (checkForm()) {
    return;
  }

  body = {
    video_url: $("video-url").value,
    title: $("caption").value,
    privacy_level: $("privacy").value,
    disable_comment: !$("allow-comment").checked,
    disable_duet: !$("allow-duet").checked,
    disable_stitch: !$("allow-stitch").checked,
    brand_organic_toggle: $("disclose").checked
                          && $("brand-organic").checked,
    brand_content_toggle: $("disclose").checked
                          && $("brand-content").checked
  };
  if (later) {
    body.schedule_at = new Date($("schedule-at").value).toISOString()
                         .replace(/\.\d{3}Z$/, "Z");
  }

  $("post").disabled = true;
  $("form-error").hidden = true;

  api("POST", "post", body).then(function (res) {
    $("post").disabled = false;
    if (res.status !== 202) {
      $("form-error").textContent = errorText(res);
      $("form-error").hidden = false;
      return;
    }
    if (later) {
      banner("Scheduled for " + new Date(body.schedule_at).toLocaleString());
    } else {
      follow(res.json.post_id);
    }
    loadPosts();
  });
};

/* the post's status until TikTok's link appears (or it fails) */
function follow(id) {
  $("progress").hidden = false;
  $("post-result").textContent = "";
  $("post-status").textContent = "queued";

  api("GET", "posts/" + encodeURIComponent(id)).then(function (res) {
    var p = res.json, a;

    if (res.status !== 200) {
      $("post-status").textContent = errorText(res);
      return;
    }
    $("post-status").textContent = p.status;

    if (p.status === "published" && p.share_url) {
      a = el("a", { href: p.share_url, id: "share-link", target: "_blank",
                    rel: "noopener" }, "View on TikTok");
      $("post-result").textContent = "Published. ";
      $("post-result").appendChild(a);
      loadPosts();
    } else if (p.status === "failed" || p.status === "cancelled") {
      $("post-result").textContent = p.error || "";
      loadPosts();
    } else {
      setTimeout(function () { follow(id); }, 1000);
    }
  });
}

function loadPosts() {
  return api("GET", "posts").then(function (res) {
    var tbody = $("posts").tBodies[0];

    tbody.textContent = "";
    if (res.status !== 200) {
      return;
    }
    res.json.posts.forEach(function (p) {
      var tr = el("tr", { "data-id": p.post_id, "data-status": p.status });
      var td = el("td");
      var when = p.schedule_at || p.created_at;
      var b;

      tr.appendChild(el("td", {}, p.title || "(no caption)"));
      tr.appendChild(el("td", { "class": "status" }, p.status));
      tr.appendChild(el("td", {},
                        when ? new Date(when).toLocaleString() : ""));
      if (p.status === "scheduled") {
        b = el("button", { "class": "cancel" }, "Cancel");
        b.onclick = function () {
          b.disabled = true;
          api("DELETE", "posts/" + encodeURIComponent(p.post_id))
            .then(function (r) {
              banner(r.status === 200 ? "Scheduled post cancelled"
                                      : errorText(r), r.status !== 200);
              loadPosts();
            });
        };
        td.appendChild(b);
      } else if (p.share_url) {
        td.appendChild(el("a", { href: p.share_url, target: "_blank",
                                 rel: "noopener" }, "View on TikTok"));
      }
      tr.appendChild(td);
      tbody.appendChild(tr);
    });
  });
}


/* --- start -------------------------------------------------------------- */

/* back from TikTok: tiktok_app_return_url?tiktok=connected|error&reason= */
function returnedFromTikTok() {
  var q = new URLSearchParams(location.search);

  if (q.get("tiktok") === "connected") {
    banner("TikTok connected");
  } else if (q.get("reason") === "access_denied") {
    banner("TikTok was not connected: you cancelled on TikTok's page.", true);
  } else if (q.get("tiktok") === "error") {
    banner("Connection failed. Try reconnecting. ("
           + (q.get("reason") || "unknown") + ")", true);
  } else {
    return false;
  }
  history.replaceState(null, "", "/#settings");
  return true;
}

window.addEventListener("hashchange", function () {
  banner("");
  route();
});

fetch("/demo/session", { cache: "no-store" }).then(function (r) {
  return r.json();
}).then(function (s) {
  state.user = s.user;
  $("nav").hidden = !s.user;
  $("signout").hidden = !s.user;
  $("whoami").textContent = s.user ? "Signed in as " + s.user : "";
  returnedFromTikTok();
  route();
});
