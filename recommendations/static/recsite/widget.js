/*! recsite widget: recommendation lists on any page, from one script tag. docs/WIDGET.md
 *
 * <script src="https://recs.example.com/static/recsite/widget.js" data-key="rs_pk_..." async></script>
 * <div class="recsite-widget" data-placement="for-you"></div>
 *
 * Vanilla JavaScript, no dependencies. It never throws into the host page: a list that
 * cannot be loaded hides its container and logs a warning to the console.
 */
(function (w, d) {
  "use strict";
  if (w.Recsite && w.Recsite.version) return; // the script is on the page twice

  var SELECTOR = ".recsite-widget[data-placement]";
  var AID = "rs_aid";
  var YEAR = 31536000;
  var script = d.currentScript || d.querySelector('script[src*="recsite/widget.js"]');
  var attr = function (name) {
    return (script && script.getAttribute("data-" + name)) || "";
  };
  var scriptUrl = new URL((script && script.src) || "widget.js", location.href);
  var api = (attr("api") || scriptUrl.origin).replace(/\/+$/, "");
  var key = attr("key");
  var known = attr("user"); // the signed-in user, when the site knows them
  var anonId = "";
  var serial = 0;
  var widgets = [];
  var queued = Array.isArray(w.Recsite) ? w.Recsite : [];

  function warn(message, error) {
    if (w.console) console.warn("recsite: " + message, error || "");
  }

  function endpoint(path, params) {
    var url = new URL(api + "/api/v1/" + path + "/");
    Object.keys(params || {}).forEach(function (name) {
      if (params[name] !== "" && params[name] != null) url.searchParams.set(name, params[name]);
    });
    url.searchParams.set("key", key);
    return url.href;
  }

  function uuid() {
    if (w.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; // version 4
    b[8] = (b[8] & 63) | 128; // variant 10
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 256).toString(16).slice(1);
    }).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  // A first-party id for visitors the site does not know: a cookie (so the site's server can
  // read it too), with localStorage for browsers that refuse the cookie.
  function anonymousId() {
    if (anonId) return anonId;
    var id = "";
    try {
      id = (d.cookie.match(/(?:^|;\s*)rs_aid=([^;]+)/) || [])[1] || localStorage.getItem(AID);
    } catch (e) {} // storage blocked (a sandboxed frame): the id lasts as long as the page
    anonId = /^anon-[\w-]{8,60}$/.test(id || "") ? id : "anon-" + uuid();
    remember(anonId);
    return anonId;
  }

  function remember(id) {
    try {
      d.cookie = AID + "=" + id + "; path=/; max-age=" + YEAR + "; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
      localStorage.setItem(AID, id);
    } catch (e) {}
  }

  function userFor(el) {
    return (el && el.getAttribute("data-user")) || known || anonymousId();
  }

  // Events go as text/plain (a CORS-safelisted type: no preflight) with sendBeacon, so they
  // survive the page being left; fetch with keepalive where sendBeacon is missing or refuses.
  function send(events) {
    if (!events.length || !key) return;
    var url = endpoint("events");
    var body = JSON.stringify(events);
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
    } catch (e) {}
    post(url, body).catch(function (error) {
      warn("events not sent", error);
    });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      body: body,
      keepalive: true,
      credentials: "omit",
      headers: { "Content-Type": "text/plain" },
    });
  }

  function track(eventType, itemId, value, context, eventId) {
    var event = {
      event_id: eventId || "evt:" + uuid(),
      user_id: userFor(null),
      item_id: String(itemId),
      event_type: eventType,
      context: context || {},
    };
    if (value != null && value !== "") event.event_value = Number(value);
    send([event]);
  }

  function safeUrl(value) {
    if (!value || typeof value !== "string") return "";
    try {
      var url = new URL(value, api + "/"); // relative: on the service
      return /^https?:$/.test(url.protocol) ? url.href : "";
    } catch (e) {
      return "";
    }
  }

  function node(tag, className, text) {
    var el = d.createElement(tag);
    if (className) el.className = "recsite__" + className;
    if (text) el.textContent = text;
    return el;
  }

  function contextOf(data, item) {
    return {
      placement: data.placement,
      variant: data.variant || null,
      position: item.position,
      source: item.source || null,
      request_id: data.request_id,
    };
  }

  function eventOf(kind, type, data, item, user) {
    return {
      event_id: kind + ":" + data.request_id + ":" + item.position,
      user_id: user,
      item_id: String(item.id),
      event_type: type,
      context: contextOf(data, item),
    };
  }

  function render(widget, data, user) {
    var el = widget.el;
    var items = (data.items || []).filter(function (item) {
      return safeUrl(item.url);
    });
    if (!items.length) return hide(widget);
    var id = "recsite-" + widget.id;
    var level = Math.min(Math.max(parseInt(el.getAttribute("data-heading"), 10) || 2, 2), 6);
    var section = node("section", "section");
    var heading = node("h" + level, "title", el.getAttribute("data-title") || "Recommended for you");
    var list = node("ul", "list");
    heading.id = id;
    section.setAttribute("aria-labelledby", id);
    list.setAttribute("role", "list"); // list-style: none drops the list role in Safari
    items.forEach(function (item) {
      var li = node("li", "item");
      var link = node("a", "link");
      var image = safeUrl(item.image);
      li.setAttribute("data-item-id", item.id);
      li.setAttribute("data-position", item.position);
      link.href = safeUrl(item.url);
      if (image) {
        var img = node("img", "image");
        img.alt = ""; // the title beside it names the link
        img.loading = "lazy";
        img.decoding = "async";
        img.src = image;
        img.onerror = function () {
          img.remove(); // a broken image is worse than none
        };
        link.appendChild(img);
      }
      link.appendChild(node("span", "name", item.title || String(item.id)));
      // A middle click opens the link too; the event id makes a second report a duplicate.
      ["click", "auxclick"].forEach(function (type) {
        link.addEventListener(type, function (event) {
          if (event.button < 2) send([eventOf("clk", "click", data, item, user)]);
        });
      });
      li.appendChild(link);
      if (item.explanation) li.appendChild(node("p", "why", item.explanation));
      list.appendChild(li);
    });
    section.appendChild(heading);
    section.appendChild(list);
    el.replaceChildren(section);
    el.hidden = false;
    whenSeen(widget, section, function () {
      send(items.map(function (item) {
        return eventOf("imp", "impression", data, item, user);
      }));
    });
    el.dispatchEvent(new CustomEvent("recsite:render", { detail: data }));
  }

  // Impressions count once the list is at least half visible (or fills half the viewport).
  function whenSeen(widget, target, callback) {
    if (widget.seen) widget.seen.disconnect();
    if (!w.IntersectionObserver) return callback();
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        var root = entry.rootBounds;
        var share = root && root.height ? entry.intersectionRect.height / root.height : 0;
        if (entry.isIntersecting && (entry.intersectionRatio >= 0.5 || share >= 0.5)) {
          observer.disconnect();
          callback();
        }
      });
    }, { threshold: [0, 0.25, 0.5, 0.75, 1] });
    observer.observe(target);
    widget.seen = observer;
  }

  function hide(widget, error) {
    widget.el.hidden = true;
    widget.el.removeAttribute("aria-busy");
    if (error) {
      warn("no recommendations for '" + widget.el.getAttribute("data-placement") + "'", error);
      widget.el.dispatchEvent(new CustomEvent("recsite:error", { detail: String(error) }));
    }
  }

  function load(widget) {
    var el = widget.el;
    var user = userFor(el);
    var request = ++widget.request;
    el.setAttribute("aria-busy", "true");
    if (!key) return hide(widget, "the script tag has no data-key");
    fetch(endpoint("recommendations", {
      placement: el.getAttribute("data-placement"),
      user: user,
      k: el.getAttribute("data-k"),
      item: el.getAttribute("data-item"),
    }), { credentials: "omit" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (request !== widget.request) return; // a newer load replaced this one
        render(widget, data, user);
        el.removeAttribute("aria-busy");
      })
      .catch(function (error) {
        if (request === widget.request) hide(widget, error);
      });
  }

  function scan() {
    try {
      d.querySelectorAll(SELECTOR).forEach(function (el) {
        if (el.recsite) return;
        el.recsite = { el: el, id: ++serial, request: 0 };
        widgets.push(el.recsite);
        load(el.recsite);
      });
    } catch (error) {
      warn("could not start", error);
    }
  }

  function refresh() {
    widgets = widgets.filter(function (widget) {
      return d.contains(widget.el);
    });
    widgets.forEach(load);
    scan();
  }

  // Carry the anonymous visitor's history over to the user who just signed in, then show
  // every list for that user. Resolves to the API's answer, or null when it failed.
  function identify(userId) {
    var user = String(userId == null ? "" : userId).trim();
    if (!user) return Promise.resolve(null);
    var anonymous = anonymousId();
    known = user;
    return post(endpoint("identify"), JSON.stringify({ anonymous_id: anonymous, user_id: user }))
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .catch(function (error) {
        warn("identify failed", error);
        return null;
      })
      .then(function (result) {
        refresh();
        return result;
      });
  }

  // Signed out: forget the user and start a new anonymous id (a shared computer's next
  // visitor does not inherit this one's history).
  function reset() {
    known = "";
    anonId = "anon-" + uuid();
    remember(anonId);
    refresh();
  }

  var Recsite = {
    version: "1",
    identify: identify,
    refresh: refresh,
    reset: reset,
    anonymousId: anonymousId,
    track: function (eventType, itemId, value, context) {
      try {
        track(eventType, itemId, value, context);
      } catch (error) {
        warn("track failed", error);
      }
    },
    // Commands queued before the script loaded: window.Recsite = [["track", "view", "id"]]
    push: function (command) {
      var method = command && Recsite[command[0]];
      return typeof method === "function" && method.apply(Recsite, command.slice(1));
    },
  };
  w.Recsite = Recsite;

  if (attr("css") !== "none" && !d.querySelector("link[data-recsite-css]")) {
    var link = d.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL("widget.css", scriptUrl).href;
    link.setAttribute("data-recsite-css", "");
    // First in <head>, so the site's own rules win every tie.
    d.head.insertBefore(link, d.head.firstChild);
  }

  function start() {
    queued.forEach(Recsite.push);
    scan();
    if (w.MutationObserver) new MutationObserver(scan).observe(d.documentElement, {
      childList: true,
      subtree: true,
    });
  }
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start);
  else start();
})(window, document);
