// Calls to swapgate's API with the user's key, and readers for its streams.
//
// Streams are read with fetch() and a ReadableStream rather than EventSource, because
// EventSource cannot send an Authorization header. A 401 from any call asks the page for a
// key (see main.js) and retries once the user has given one.

const KEY_STORE = "swapgate.key";

let keyWaiter = null; // { promise, resolve } while the page waits for the user's key
let askForKey = () => {}; // set by the page: shows the key prompt

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function currentKey() {
  return sessionStorage.getItem(KEY_STORE);
}

export function onKeyNeeded(callback) {
  askForKey = callback;
}

export function useKey(key) {
  sessionStorage.setItem(KEY_STORE, key);
  if (keyWaiter) {
    keyWaiter.resolve();
    keyWaiter = null;
  }
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORE);
}

function nextKey(refused) {
  if (!keyWaiter) {
    let resolve;
    const promise = new Promise((done) => (resolve = done));
    keyWaiter = { promise, resolve };
    askForKey(refused);
  }
  return keyWaiter.promise;
}

function withKey(headers) {
  const merged = new Headers(headers || {});
  const key = currentKey();
  if (key) merged.set("Authorization", `Bearer ${key}`);
  return merged;
}

// fetch(), with the key; waits for a key and tries again whenever the answer is 401.
export async function call(path, options = {}) {
  for (;;) {
    const response = await fetch(path, { ...options, headers: withKey(options.headers) });
    if (response.status !== 401) return response;
    await nextKey(Boolean(currentKey()));
  }
}

// The error message of a failed answer (swapgate's errors are {"error": {"message": ...}}).
export async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(response.status, message);
}

export async function getJson(path, options = {}) {
  const response = await call(path, options);
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

export async function post(path, body) {
  const options = { method: "POST" };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers = { "Content-Type": "application/json" };
  }
  const response = await call(path, options);
  if (!response.ok) throw await errorOf(response);
  return response;
}

// A model id as a path segment (ids may contain "/", which stays a separator).
export function modelPath(id) {
  return id.split("/").map(encodeURIComponent).join("/");
}

// Read a text stream line by line (without the newline) until it ends.
export async function readLines(response, onLine) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const lines = (rest + value).split("\n");
    rest = lines.pop();
    for (const line of lines) onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
  if (rest) onLine(rest);
}

// Read server-sent events: onEvent(name, data) per event ("message" when it names none).
export async function readEvents(response, onEvent) {
  let name = "";
  let data = [];
  await readLines(response, (line) => {
    if (line === "") {
      if (data.length) onEvent(name || "message", data.join("\n"));
      name = "";
      data = [];
    } else if (line.startsWith("event:")) {
      name = line.slice(6).trim();
    } else if (line.startsWith("data:")) {
      data.push(line.slice(5).replace(/^ /, ""));
    }
  });
}

// Keep a stream open: open(signal) reads it until it ends; then wait and open it again
// (1 s, doubling to 10 s while it keeps failing) until `signal` aborts.
// onStatus gets "live", "retrying" or an ApiError the user should see.
export async function keepOpen(open, signal, onStatus) {
  let delay = 1000;
  while (!signal.aborted) {
    try {
      await open(() => {
        delay = 1000;
        onStatus("live");
      });
      onStatus("retrying");
    } catch (error) {
      if (signal.aborted) return;
      onStatus(error instanceof ApiError ? error : "retrying");
      delay = Math.min(delay * 2, 10000);
    }
    await pause(delay, signal);
  }
}

function pause(ms, signal) {
  return new Promise((done) => {
    const stop = () => {
      clearTimeout(timer);
      done();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", stop);
      done();
    }, ms);
    signal.addEventListener("abort", stop, { once: true });
  });
}
