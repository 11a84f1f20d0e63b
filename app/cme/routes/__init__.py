"""HTTP for LA case systems, one router per CME use case; `app.cme.router` puts them under /v1/cme."""
