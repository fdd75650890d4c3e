import { describe, expect, it } from 'vitest';
import { formatBound, formatOffset, formatRoutedBy, formatServerTime, regionName, shareLink } from '../src/format';
import { validateUserId } from '../src/components/Forms';

describe('formatting', () => {
  it('formats offsets and bounds', () => {
    expect(formatOffset(-5000.26)).toBe('−5000.3 ms');
    expect(formatOffset(3.04)).toBe('+3.0 ms');
    expect(formatOffset(12_345)).toBe('+12.35 s');
    expect(formatBound(1.25)).toBe('± 1.3 ms');
  });

  it('explains the edge’s routing codes and passes unknown ones through readably', () => {
    expect(formatRoutedBy('preference')).toBe('you picked this region');
    expect(formatRoutedBy('failover')).toMatch(/first choice/);
    expect(formatRoutedBy('nearestColo')).toBe('nearest colo');
    expect(formatRoutedBy({ rule: 'geo', country: 'JP' })).toBe('rule: geo, country: JP');
    expect(formatRoutedBy(undefined)).toBe('not reported by the edge');
  });

  it('names regions, times and links', () => {
    expect(regionName('asia')).toBe('Asia (asia)');
    expect(regionName('mars')).toBe('mars');
    expect(formatServerTime(Date.UTC(2026, 0, 2, 3, 4, 5, 67))).toBe('03:04:05.067 UTC');
    expect(shareLink('g/1 x', 'http://127.0.0.1:8787')).toBe('http://127.0.0.1:8787/?game=g%2F1%20x');
  });

  it('validates user ids before sending', () => {
    expect(validateUserId('  ')).toMatch(/Enter a user id/);
    expect(validateUserId('x'.repeat(65))).toMatch(/64/);
    expect(validateUserId(' alice ')).toBeNull();
    expect(validateUserId('bob smith')).toMatch(/only letters/);
  });
});
