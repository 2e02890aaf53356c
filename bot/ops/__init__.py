"""Operations: metrics and logs (with personal data masked)."""
