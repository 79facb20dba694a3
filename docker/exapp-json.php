<?php
// Prints the --json-info for `occ app_api:app:register` from appinfo/info.xml,
// so the routes registered by docker-compose's one-shot are exactly the manifest's.
//   php exapp-json.php /path/to/info.xml     (APP_SECRET and APP_PORT from the environment)
// JSON route fields are typed: access_level as 0|1|2, bruteforce_protection and
// headers_to_exclude as arrays, the types AppAPI reads from JSON.

declare(strict_types=1);

$file = $argv[1] ?? '';
$xml = $file === '' ? false : simplexml_load_file($file);
if ($xml === false) {
	fwrite(STDERR, "cannot read info.xml at '$file'\n");
	exit(1);
}
$secret = getenv('APP_SECRET');
$port = getenv('APP_PORT');
if ($secret === false || $secret === '' || $port === false || !ctype_digit($port)) {
	fwrite(STDERR, "APP_SECRET and a numeric APP_PORT are required\n");
	exit(1);
}

$levels = ['PUBLIC' => 0, 'USER' => 1, 'ADMIN' => 2];
$routes = [];
foreach ($xml->{'external-app'}->routes->route as $route) {
	$level = strtoupper(trim((string)$route->access_level));
	$entry = [
		'url' => (string)$route->url,
		'verb' => (string)$route->verb,
		'access_level' => $levels[$level] ?? (int)$level,
	];
	foreach (['bruteforce_protection', 'headers_to_exclude'] as $list) {
		if (isset($route->{$list})) {
			$entry[$list] = json_decode((string)$route->{$list}, true, 8, JSON_THROW_ON_ERROR);
		}
	}
	$routes[] = $entry;
}

echo json_encode([
	'id' => (string)$xml->id,
	'name' => (string)$xml->name,
	'version' => (string)$xml->version,
	'secret' => $secret,
	'port' => (int)$port,
	'routes' => $routes,
], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES), "\n";
