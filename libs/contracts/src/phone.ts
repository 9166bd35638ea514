/** E.164: a +, a country code not starting with 0, 7-15 digits in all. */
export const E164 = /^\+[1-9][0-9]{6,14}$/;

/**
 * Phone numbers never reach logs, records or error strings in full: every digit but the
 * last four becomes `*` (`+8613812345678` → `+*********5678`). The shape stays readable
 * for support (same length, a `+` for E.164) while the number cannot be recovered.
 */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, "").length;
  let seen = 0;
  return phone.replace(/\d/g, (d) => (++seen > digits - 4 ? d : "*"));
}

/** Phone-like runs in free text: an optional +, then 7-15 digits with optional spaces/dashes. */
const PHONE_IN_TEXT = /\+?\d(?:[\s-]?\d){6,14}/g;

/** Masks every phone-like number inside a string (provider error messages may echo one). */
export function maskPhonesIn(text: string): string {
  return text.replace(PHONE_IN_TEXT, (m) => maskPhone(m));
}
