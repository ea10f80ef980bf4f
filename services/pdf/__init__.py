"""The documents people read, as PDFs: invoices, credit notes and sign-off certificates."""
