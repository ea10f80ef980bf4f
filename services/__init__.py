"""The operations that both the API's routes and the worker's activities perform.

Routes and activities never import each other; each rule that both need lives here once."""
