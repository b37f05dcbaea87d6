// Form pieces shared by the admin views.

/** `null` means every model; otherwise the chosen ids. */
export function ModelPicker({ options, value, onChange, legend = 'Models the user may call' }) {
  const all = value === null;
  const toggle = (id, on) => onChange(on ? [...value, id] : value.filter((v) => v !== id));
  return (
    <fieldset class="picker">
      <legend>{legend}</legend>
      <label class="check">
        <input type="checkbox" checked={all} onChange={(e) => onChange(e.currentTarget.checked ? null : [])} />
        All models
      </label>
      {!all && options.length === 0 && <span class="hint">No models registered yet.</span>}
      {!all &&
        options.map((id) => (
          <label class="check" key={id}>
            <input type="checkbox" checked={value.includes(id)} onChange={(e) => toggle(id, e.currentTarget.checked)} />
            <span class="mono">{id}</span>
          </label>
        ))}
    </fieldset>
  );
}

/** Parse lines of `NAME=value` (or `Name: value`) into an object; blank lines are skipped. */
export function parsePairs(text, separator) {
  const out = {};
  for (const raw of String(text ?? '').split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(separator);
    if (at <= 0) throw new Error(`“${line}” is not of the form NAME${separator}value.`);
    out[line.slice(0, at).trim()] = line.slice(at + separator.length).trim();
  }
  return out;
}

export function lines(text) {
  return String(text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Parse a JSON object typed into a textarea; empty is `null`. */
export function parseJsonObject(text, name) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) return null;
  let value;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    throw new Error(`${name} is not valid JSON: ${error.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${name} must be a JSON object.`);
  }
  return value;
}
