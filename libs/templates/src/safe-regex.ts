import { RE2JS } from "re2js";

/** Longest `pattern` / `patternProperties` key a template schema may hold. */
export const MAX_PATTERN_LENGTH = 256;
/**
 * Largest compiled RE2 program (instructions) one pattern may become. RE2 matches in
 * time linear in the input, but the constant grows with the program: counted repeats
 * such as `\p{L}{1000}` expand to thousands of instructions. At this bound one pattern
 * checks a 64 KiB string (the largest an event can carry) in tens of milliseconds at worst.
 */
export const MAX_PATTERN_PROGRAM = 200;

/** A pattern the sandbox refuses: too long, too large once compiled, or not RE2 syntax. */
export class PatternError extends Error {
  override name = "PatternError";
  constructor(
    message: string,
    readonly pattern: string,
  ) {
    super(message);
  }
}

interface Re2Internals {
  re2Input?: { prog?: { inst?: unknown[] } };
}

/**
 * Compiles a JSON-Schema pattern with RE2 (re2js, a pure-JS port: no native build): no
 * backtracking, so `^(a+)+$` checks any string in linear time. Backreferences and
 * lookaround do not exist in RE2 and are refused, as is anything past the bounds above.
 */
export function compileSafePattern(pattern: string): { test(s: string): boolean; toString(): string; size: number } {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new PatternError(`pattern is ${pattern.length} characters; at most ${MAX_PATTERN_LENGTH} are allowed`, pattern);
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (err) {
    throw new PatternError(`pattern ${JSON.stringify(pattern)} is not supported: ${(err as Error).message} (linear-time RE2 syntax: no backreferences or lookaround)`, pattern);
  }
  const size = (re as unknown as Re2Internals).re2Input?.prog?.inst?.length;
  if (size === undefined) throw new PatternError("cannot measure the compiled pattern (re2js internals changed)", pattern);
  if (size > MAX_PATTERN_PROGRAM) {
    throw new PatternError(`pattern ${JSON.stringify(pattern)} compiles to ${size} instructions; at most ${MAX_PATTERN_PROGRAM} are allowed (use smaller repeat counts)`, pattern);
  }
  // Ajv keys its pattern cache by toString(): the source identifies the pattern.
  return { test: (s: string) => re.test(s), toString: () => pattern, size };
}

/** Ajv's `code.regExp`: every `pattern` and `patternProperties` key goes through RE2. */
export const re2RegExp = Object.assign((pattern: string, _flags: string) => compileSafePattern(pattern), { code: "re2js" });
