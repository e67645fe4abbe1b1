# libphx_db: migrations and the libpq store.
$(eval $(call phx_lib,phx_db,db))
