"""The Stripe reporter: keeps Stripe Billing in step with the ledger (the only part that talks to Stripe)."""
