-- Earlier versions copied the operator's environment (--session_agent_env:
-- model API keys) into the config of every PO session's worker, where it was
-- stored here and returned by GetWorker/ListWorkers. It now reaches the
-- sandbox's environment only; what was stored goes.
UPDATE agents.workers
   SET worker = worker #- '{config,environment}'
 WHERE worker->'config'->>'workerType' = 'WORKER_TYPE_PO'
   AND worker->'config' ? 'environment';
