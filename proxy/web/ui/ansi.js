// ANSI colour codes (SGR) in log lines, turned into text segments with CSS classes.
//
// Handled: 0 reset, 1 bold (22 ends it), 30-37 and 90-97 foreground, 39 default
// foreground, 40-47 and 100-107 background, 49 default background. 256-colour and RGB
// codes (38;5;n, 38;2;r;g;b) are skipped whole; other escape sequences are dropped. The
// segments are text: the caller puts them in text nodes, so markup in a line stays text.

const ESCAPE = /\x1b\[([0-9;?]*)([A-Za-z])/g;

function apply(state, params) {
  const codes = params === "" ? [0] : params.split(";").map((p) => Number(p || 0));
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code === 0) Object.assign(state, { fg: null, bg: null, bold: false });
    else if (code === 1) state.bold = true;
    else if (code === 22) state.bold = false;
    else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) state.fg = code;
    else if (code === 39) state.fg = null;
    else if ((code >= 40 && code <= 47) || (code >= 100 && code <= 107)) state.bg = code;
    else if (code === 49) state.bg = null;
    else if (code === 38 || code === 48) i += codes[i + 1] === 5 ? 2 : codes[i + 1] === 2 ? 4 : 0;
  }
}

function classes(state) {
  const names = [];
  if (state.fg !== null) names.push(`fg-${state.fg}`);
  if (state.bg !== null) names.push(`bg-${state.bg}`);
  if (state.bold) names.push("bold");
  return names.join(" ");
}

// "\x1b[31mred\x1b[0m ok" -> [{ text: "red", className: "fg-31" }, { text: " ok", className: "" }]
export function ansiSegments(line) {
  const state = { fg: null, bg: null, bold: false };
  const segments = [];
  let at = 0;
  const push = (text) => {
    if (text) segments.push({ text, className: classes(state) });
  };
  for (const match of line.matchAll(ESCAPE)) {
    push(line.slice(at, match.index));
    if (match[2] === "m") apply(state, match[1]);
    at = match.index + match[0].length;
  }
  push(line.slice(at).replaceAll("\x1b", ""));
  return segments;
}
