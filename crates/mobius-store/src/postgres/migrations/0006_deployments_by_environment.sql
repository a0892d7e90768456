-- Every service's DORA for one environment reads its deployments by environment and time
-- (`facts_of_environment`); `deployments_scope` leads with the service, so without this the
-- query scans every deployment (about 245 ms at 1M events).
CREATE INDEX deployments_environment ON deployments (environment, finished);
