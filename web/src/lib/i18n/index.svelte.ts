// Every string the person sees comes from a locale file (de is the default, en ships too).
// `t('a.b', { n: 3 })` looks the dotted key up and fills `{n}` placeholders. Reading the locale
// inside `t` makes every template that calls it follow a language switch.
import de from './de.json';
import en from './en.json';

export type Locale = 'de' | 'en';
type Dict = { [key: string]: string | Dict };

const dicts: Record<Locale, Dict> = { de, en };
const STORAGE_KEY = 'weberei.locale';

function initial(): Locale {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === 'de' || saved === 'en') return saved;
  } catch {
    /* no storage */
  }
  return 'de';
}

class I18n {
  locale = $state<Locale>(initial());

  set(l: Locale) {
    this.locale = l;
    try {
      localStorage.setItem(STORAGE_KEY, l);
    } catch {
      /* no storage */
    }
    document.documentElement.lang = l;
  }
}

export const i18n = new I18n();

function lookup(dict: Dict, key: string): string | undefined {
  let node: string | Dict | undefined = dict;
  for (const part of key.split('.')) {
    if (node === undefined || typeof node === 'string') return undefined;
    node = node[part];
  }
  return typeof node === 'string' ? node : undefined;
}

/** The text for `key` in the current locale (German, then the key itself as fallbacks). */
export function t(key: string, params?: Record<string, string | number>): string {
  // `key_one` is the singular form, used when params.n is 1.
  const one = params?.n === 1 ? (lookup(dicts[i18n.locale], `${key}_one`) ?? lookup(dicts.de, `${key}_one`)) : undefined;
  const text = one ?? lookup(dicts[i18n.locale], key) ?? lookup(dicts.de, key) ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) =>
    name in params ? String(params[name]) : m,
  );
}

/** Whether `key` exists (used for optional texts such as error codes). */
export function has(key: string): boolean {
  return lookup(dicts[i18n.locale], key) !== undefined || lookup(dicts.de, key) !== undefined;
}

const dateFormats = new Map<string, Intl.DateTimeFormat>();
/** A date and time in the current locale. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const key = i18n.locale;
  let f = dateFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(key === 'de' ? 'de-DE' : 'en-GB', {
      dateStyle: 'medium',
      timeStyle: 'short',
    });
    dateFormats.set(key, f);
  }
  return f.format(new Date(iso));
}

/** "in 3 days" / "vor 2 Stunden" in the current locale. */
export function formatRelative(iso: string, now = Date.now()): string {
  const diff = new Date(iso).getTime() - now;
  const rtf = new Intl.RelativeTimeFormat(i18n.locale, { numeric: 'auto' });
  const abs = Math.abs(diff);
  if (abs < 60_000) return rtf.format(Math.round(diff / 1000), 'second');
  if (abs < 3_600_000) return rtf.format(Math.round(diff / 60_000), 'minute');
  if (abs < 86_400_000) return rtf.format(Math.round(diff / 3_600_000), 'hour');
  return rtf.format(Math.round(diff / 86_400_000), 'day');
}
